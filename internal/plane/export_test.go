package plane

import (
	"net/http"

	"github.com/tetherhq/tether/docs/api/apitest"
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
