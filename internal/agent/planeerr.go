package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

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
