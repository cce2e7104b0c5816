package api

import "github.com/tetherhq/tether/docs/api/apitest"

// RoutePatterns returns the patterns Handler and InternalHandler register,
// by running the code that registers them.
func (s *Server) RoutePatterns() (public, internal []string) {
	var pub, in apitest.Recorder
	s.publicRoutes(&pub)
	s.internalOnlyRoutes(&in)
	return pub.Patterns, in.Patterns
}
