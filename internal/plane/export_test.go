package plane

import "github.com/tetherhq/tether/docs/api/apitest"

// RoutePatterns returns the patterns Handler serves, by running the code
// that registers them.
func (s *Server) RoutePatterns() []string {
	var r apitest.Recorder
	s.register(&r)
	return r.Patterns
}
