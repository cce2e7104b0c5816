package plane

import (
	"context"
	"net/http"
	"sync"

	"github.com/tetherhq/tether/docs/api/apitest"
	"github.com/tetherhq/tether/internal/plane/planestore"
)

// RoutePatterns returns the patterns Handler serves, by running the code
// that registers them.
func (s *Server) RoutePatterns() []string {
	var r apitest.Recorder
	s.register(&r)
	return r.Patterns
}

// permRecorder keeps each admin route's permission.
type permRecorder struct{ perms map[string]Permission }

func (r *permRecorder) Handle(pattern string, h http.Handler) {
	if g, ok := h.(guarded); ok {
		r.perms[pattern] = g.perm
	}
}

func (r *permRecorder) HandleFunc(string, func(http.ResponseWriter, *http.Request)) {}

// RoutePermissions maps every route guarded by require to the permission it
// needs, by running the code that registers them.
func (s *Server) RoutePermissions() map[string]Permission {
	r := &permRecorder{perms: map[string]Permission{}}
	s.register(r)
	return r.perms
}

// testSessions names the principal of sessions StartSession began.
var testSessions sync.Map

// UseTestSessions makes s resolve sessions StartSession began to their
// principal; other sessions are resolved as always. Call it before serving.
func (s *Server) UseTestSessions() {
	s.sessionPrincipal = func(id string) (planestore.Principal, bool) {
		p, ok := testSessions.Load(id)
		if !ok {
			return planestore.Principal{}, false
		}
		return p.(planestore.Principal), true
	}
}

// StartSession starts a dashboard session for p, as a sign-in would, and
// returns its cookie value and the form token its pages carry.
func (s *Server) StartSession(ctx context.Context, p planestore.Principal) (cookie, csrf string, err error) {
	id, err := s.store.StartSession(ctx, s.now(), nil)
	if err != nil {
		return "", "", err
	}
	testSessions.Store(id, p)
	return id, csrfToken(id), nil
}

// SessionCookie is the dashboard session cookie's name.
const SessionCookie = sessionCookie
