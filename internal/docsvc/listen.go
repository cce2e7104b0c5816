package docsvc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherhq/tether/internal/sqldb"
)

// ListenFDsEnv names the listeners a supervisor hands docsvc api as
// inherited file descriptors: "3" (the public listener, used instead of
// DOCSVC_ADDR) or "3,4" (and a private one serving this process's own
// /readyz and /metrics). tetherctl dev owns the API's socket this way, so
// an upgrade starts the new api on the same socket beside the old one.
const ListenFDsEnv = "DOCSVC_LISTEN_FDS"

// parseListenFDs reads ListenFDsEnv's value: empty, or one or two
// descriptor numbers of 3 and up (0-2 are stdio), comma-separated.
func parseListenFDs(v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("docsvc: %s=%q names %d descriptors; want one or two, e.g. \"3\" or \"3,4\"", ListenFDsEnv, v, len(parts))
	}
	var fds []int
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 3 || n > 1024 {
			return nil, fmt.Errorf("docsvc: %s=%q: %q is not a descriptor number from 3 to 1024; unset it unless a supervisor passes listeners", ListenFDsEnv, v, p)
		}
		for _, f := range fds {
			if f == n {
				return nil, fmt.Errorf("docsvc: %s=%q names descriptor %d twice", ListenFDsEnv, v, n)
			}
		}
		fds = append(fds, n)
	}
	return fds, nil
}

// inheritedListeners opens the listeners ListenFDsEnv names.
func inheritedListeners(v string) ([]net.Listener, error) {
	fds, err := parseListenFDs(v)
	if err != nil {
		return nil, err
	}
	var ls []net.Listener
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "listener-"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		f.Close() // FileListener holds its own duplicate
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("docsvc: %s=%q: descriptor %d is not a listening socket (%v); unset it unless a supervisor passes listeners", ListenFDsEnv, v, fd, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// testHandlers is empty in every release build; the upgrade tests' build
// tags (upgradetest_v2, upgradetest_unhealthy) add to it, so a test release
// differs from the product in a known way without changing its code.
var testHandlers []func(http.Handler, *sqldb.DB) http.Handler

func withTestHandlers(h http.Handler, db *sqldb.DB) http.Handler {
	for _, wrap := range testHandlers {
		h = wrap(h, db)
	}
	return h
}

// handover is the api's listener on a socket it shares with the process
// replacing it. http.Server.Shutdown alone would drop a request: a
// connection this process accepted whose first request arrives after
// Shutdown began is closed unanswered, and on a shared socket the client
// could as well have reached the other process. So drain stops taking
// connections from the shared socket first (the other process takes them
// all), answers every request on the connections it has with
// "Connection: close", and calls Shutdown only once they are closed or the
// window ends.
type handover struct {
	net.Listener
	draining atomic.Bool
	closed   chan struct{}
	once     sync.Once

	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
}

func newHandover(hs *http.Server, l net.Listener) *handover {
	h := &handover{Listener: l, closed: make(chan struct{}), conns: map[net.Conn]http.ConnState{}}
	next := hs.Handler
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(h.conns, c)
		} else {
			h.conns[c] = st
		}
	}
	return h
}

// Accept hands over connections until drain; then it waits for Close, so
// the server's Serve does not end before Shutdown.
func (h *handover) Accept() (net.Conn, error) {
	c, err := h.Listener.Accept()
	if err != nil && h.draining.Load() {
		<-h.closed
		return nil, net.ErrClosed
	}
	return c, err
}

func (h *handover) Close() error {
	h.once.Do(func() { close(h.closed) })
	return h.Listener.Close()
}

// drain stops accepting and waits, at most window, for this process's
// connections to close after their last answer.
func (h *handover) drain(ctx context.Context, window time.Duration) {
	h.draining.Store(true)
	h.Listener.Close() // this process's descriptor only: the socket stays open for the other
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	for {
		h.mu.Lock()
		open := len(h.conns)
		h.mu.Unlock()
		if open == 0 {
			return
		}
		// Shutdown then closes the idle ones and waits for the busy ones.
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
