package plane

import (
	"context"
	"sync"

	"github.com/tetherhq/tether/docs/api/apitest"
)

// RoutePatterns returns the patterns Handler serves, by running the code
// that registers them.
func (s *Server) RoutePatterns() []string {
	var r apitest.Recorder
	s.register(&r)
	return r.Patterns
}

// testSessions names the principal of sessions StartSession began.
var testSessions sync.Map

// UseTestSessions makes s resolve sessions StartSession began to their
// principal; other sessions stay the admin token's. Call it before serving.
func (s *Server) UseTestSessions() {
	s.sessionPrincipal = func(id string) Principal {
		if p, ok := testSessions.Load(id); ok {
			return p.(Principal)
		}
		return breakGlass()
	}
}

// StartSession starts a dashboard session for p, as a sign-in would, and
// returns its cookie value and the form token its pages carry.
func (s *Server) StartSession(ctx context.Context, p Principal) (cookie, csrf string, err error) {
	id, err := s.sessions.start(ctx, s.now())
	if err != nil {
		return "", "", err
	}
	testSessions.Store(id, p)
	return id, csrfToken(id), nil
}

// SessionCookie is the dashboard session cookie's name.
const SessionCookie = sessionCookie
