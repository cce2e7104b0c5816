package agent

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestPlaneCannotRedirectTheAgent: a 3xx from the plane is a failed request,
// never a request to the Location it names.
func TestPlaneCannotRedirectTheAgent(t *testing.T) {
	t.Parallel()
	var reached atomic.Bool
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	defer inside.Close()
	plane := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inside.URL+"/anything", http.StatusTemporaryRedirect)
	}))
	defer plane.Close()
	o := Options{HTTPClient: &http.Client{}} // a caller-supplied client gets the policy too
	o.defaults()
	res, err := o.HTTPClient.Post(plane.URL+"/v1/heartbeat", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || reached.Load() {
		t.Fatalf("status %d, redirect target reached: %v", res.StatusCode, reached.Load())
	}
}
