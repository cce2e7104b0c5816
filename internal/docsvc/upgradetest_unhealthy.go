//go:build upgradetest_unhealthy

package docsvc

import (
	"net/http"
	"sync/atomic"

	"github.com/tetherhq/tether/internal/sqldb"
)

// The upgrade tests' failing release: on each listener its api answers
// /readyz once (so a supervisor swaps to it) and is down from then on, so
// the upgrade's health watch must swap back.
func init() {
	testHandlers = append(testHandlers, func(h http.Handler, _ *sqldb.DB) http.Handler {
		var readyzAnswered atomic.Bool
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" && readyzAnswered.Swap(true) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"status":"down","checks":{"upgradetest_unhealthy":{"status":"down"}}}` + "\n"))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
}
