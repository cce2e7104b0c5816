package plane

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Failed admin authentications (dashboard logins and admin API calls with
// a wrong token) are limited per client address, across replicas.
const (
	authFailLimit  = 10
	authFailWindow = time.Minute
)

// clientAddr is the address failed authentications are counted against:
// the peer, or behind a load balancer (Config.TrustForwardedFor) the last
// X-Forwarded-For entry, the one the load balancer itself appended.
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.TrustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authBlocked reports whether the client used up its failed attempts for
// the current window. A database error blocks nothing: the token check
// still guards the door.
func (s *Server) authBlocked(r *http.Request) bool {
	count, err := s.store.RateCount(r.Context(), "auth:"+s.clientAddr(r), s.now().Add(-authFailWindow))
	if err != nil {
		s.log.Error("rate limit", "err", err)
	}
	return count >= authFailLimit
}

// authFailed counts a failed authentication from the request's client.
func (s *Server) authFailed(r *http.Request) {
	if _, err := s.store.Allow(r.Context(), "auth:"+s.clientAddr(r), authFailLimit, authFailWindow); err != nil {
		s.log.Error("rate limit", "err", err)
	}
}

// tooManyAttempts answers a client that used up its failed attempts.
func tooManyAttempts(w http.ResponseWriter) {
	w.Header().Set("Retry-After", fmt.Sprint(int(authFailWindow.Seconds())))
	writeError(w, http.StatusTooManyRequests, "too many failed admin token attempts from this address; wait a minute")
}
