package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/reqsign"
)

// maxAnswer bounds what the agent reads of any plane answer; the largest
// (a list of 100 diagnostic requests) is well under it.
const maxAnswer = 1 << 20

// planeClient sends the agent's requests. Every request with a body is
// appended to the egress ledger before it leaves, and every request after
// activation is signed.
type planeClient struct {
	base   string
	http   *http.Client
	ledger *ledger.Ledger
	now    func() time.Time

	mu        sync.Mutex
	key       ed25519.PrivateKey
	installID string
}

func (c *planeClient) setIdentity(key ed25519.PrivateKey, installID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key, c.installID = key, installID
}

// ledgerEntries is the ledger's entry count, for the status page and logs.
func (c *planeClient) ledgerEntries() uint64 {
	seq, _, _ := c.ledger.Head()
	return seq
}

// send makes one request to path on the plane, ledgered first (as kind)
// when it has a body or kind is set; signed is false only for activation.
func (c *planeClient) send(ctx context.Context, kind, method, path string, body []byte, signed bool) (int, []byte, error) {
	url := strings.TrimRight(c.base, "/") + path
	if len(body) > 0 || kind != "" {
		if _, err := c.ledger.Append(kind, method+" "+url, body, c.now()); err != nil {
			// Nothing leaves that the ledger does not hold.
			return 0, nil, &planeError{class: failLedger, err: fmt.Errorf("ledger before %s %s: %w", method, path, err)}
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
		if kind == ledger.KindDiagnostics {
			req.Header.Set("Content-Type", "application/zip")
		}
	}
	req.Header.Set("User-Agent", "tether-agent/"+Version)
	if signed {
		if err := c.sign(req, body); err != nil {
			return 0, nil, err
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, transportError(fmt.Errorf("%s %s: %w", method, path, err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, transportError(fmt.Errorf("%s %s: read answer: %w", method, path, err))
	}
	return resp.StatusCode, out, nil
}

// post validates v (wire's Validate, the data-boundary check) and sends
// it as JSON; a payload that fails is neither ledgered nor sent.
func (c *planeClient) post(ctx context.Context, kind, path string, v interface{ Validate() error }, signed bool) (int, []byte, error) {
	if err := v.Validate(); err != nil {
		// wire's errors name the field and rule, never the value.
		return 0, nil, &planeError{class: failInvalid, err: err}
	}
	body, err := json.Marshal(v)
	if err != nil {
		return 0, nil, &planeError{class: failInvalid, err: err}
	}
	return c.send(ctx, kind, "POST", path, body, signed)
}

// sign signs req; before activation reqsign refuses it (no key, no install ID).
func (c *planeClient) sign(req *http.Request, body []byte) error {
	c.mu.Lock()
	key, id := c.key, c.installID
	c.mu.Unlock()
	return reqsign.Sign(req, body, id, key, c.now())
}

// signTUF is updater.Config.Sign: each TUF download is recorded as a
// release-check (destination only; a GET has no payload) and signed.
func (c *planeClient) signTUF(req *http.Request) error {
	if _, err := c.ledger.Append(ledger.KindReleaseCheck, req.Method+" "+req.URL.String(), nil, c.now()); err != nil {
		return err
	}
	return c.sign(req, nil)
}

// Why a request to the plane failed, named so an operator can tell a
// revoked install from a refused payload from a broken ledger. They appear
// in the agent's log ("class") and on its status page.
const (
	failLedger       = "ledger"       // the egress ledger would not take the entry, so nothing was sent
	failUnreachable  = "unreachable"  // no answer: DNS, connection or TLS
	failTimeout      = "timeout"      // no answer in time
	failCanceled     = "canceled"     // the agent is stopping
	failRevoked      = "revoked"      // the vendor revoked this install
	failUnauthorized = "unauthorized" // the plane refused the signature: clock skew, unknown install, replaced key
	failRejected     = "rejected"     // the plane refused the request (4xx)
	failPlane        = "plane-error"  // the plane failed (5xx)
	failAnswer       = "bad-answer"   // an answer the agent cannot use
	failInvalid      = "invalid"      // the agent's own payload failed validation and was not sent
)

// planeError is a failed request to the plane. Its text never quotes a
// payload, only what went wrong.
type planeError struct {
	class  string
	status int    // the plane's HTTP status; 0 when it did not answer
	code   string // the plane's {"error": ...}, when short and printable
	err    error
}

func (e *planeError) Error() string {
	switch {
	case e.status != 0 && e.code != "":
		return fmt.Sprintf("%s: plane answered %d (%s)", e.class, e.status, e.code)
	case e.status != 0:
		return fmt.Sprintf("%s: plane answered %d", e.class, e.status)
	case e.err != nil:
		return fmt.Sprintf("%s: %v", e.class, e.err)
	}
	return e.class
}

func (e *planeError) Unwrap() error { return e.err }

// failureClass is err's class, for logs and the status page.
func failureClass(err error) string {
	var pe *planeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return pe.class
	case errors.Is(err, context.Canceled):
		return failCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return failTimeout
	}
	return "error"
}

// transportError classifies a request that got no answer.
func transportError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return &planeError{class: failCanceled, err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return &planeError{class: failTimeout, err: err}
	}
	return &planeError{class: failUnreachable, err: err}
}

// statusError classifies an unexpected answer, keeping the plane's
// {"error": ...} code (such as "revoked" or the wire rule a payload broke)
// when it is short and printable.
func statusError(status int, body []byte) error {
	var answer struct {
		Error string `json:"error"`
	}
	code := ""
	if json.Unmarshal(body, &answer) == nil && len(answer.Error) <= 200 &&
		strings.IndexFunc(answer.Error, func(r rune) bool { return r < ' ' || r > '~' }) < 0 {
		code = answer.Error
	}
	class := failAnswer
	switch {
	case status >= 400 && status < 500 && strings.Contains(code, "revoked"):
		class = failRevoked
	case status == 401:
		class = failUnauthorized
	case status >= 400 && status < 500:
		class = failRejected
	case status >= 500:
		class = failPlane
	}
	return &planeError{class: class, status: status, code: code}
}
