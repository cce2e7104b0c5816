package docsvc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

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
