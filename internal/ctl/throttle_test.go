package ctl_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetherhq/tether/internal/awstest"
)

// throttler stands between tetherctl and the emulator and answers the
// first n Secrets Manager calls (n < 0: every call) the way AWS throttles:
// HTTP 400 with a ThrottlingException. moto has no way to throttle on
// demand, so the throttle is this proxy; the calls that pass reach moto.
func throttler(t *testing.T, srv *awstest.Server, n int64) (*httptest.Server, *atomic.Int64) {
	target, err := url.Parse(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var throttled atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.") && (n < 0 || throttled.Load() < n) {
			throttled.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, &throttled
}

// Throttling is retried as the SDK retries it; throttling that does not
// stop fails the command with AWS's reason, instead of hanging or passing.
func TestThrottledCallsAreRetriedThenReported(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	v := newVendor(t)
	srv := awstest.Start(t)
	srv.CreateSecret(t, licenseSecret, v.validLicense(t))
	config := defaultDeployment(v).write(t)

	ts, throttled := throttler(t, srv, 2)
	in := invocation{env: envOf(srv.Env(), []string{"AWS_ENDPOINT_URL=" + ts.URL})}
	out := in.run(ctx, "secrets", "show", "license", "--config", config)
	if out.err != nil || throttled.Load() != 2 {
		t.Fatalf("two throttled calls: %v (throttled %d)\n%s", out.err, throttled.Load(), out.all())
	}
	if !strings.Contains(out.stdout, "ACME Corp") {
		t.Errorf("the license was not shown after the retries:\n%s", out.stdout)
	}

	always, _ := throttler(t, srv, -1)
	in = invocation{env: envOf(srv.Env(), []string{"AWS_ENDPOINT_URL=" + always.URL})}
	out = in.run(ctx, "secrets", "show", "license", "--config", config)
	if out.err == nil || !strings.Contains(out.all(), "ThrottlingException") {
		t.Fatalf("throttled throughout: err %v; want a failure naming ThrottlingException\n%s", out.err, out.all())
	}
}
