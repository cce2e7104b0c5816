package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrPublicStatusAddr is matched when --status-addr is not a loopback or
// private address.
var ErrPublicStatusAddr = errors.New("status page address must be a loopback or private (RFC 1918 / ULA) IP")

// CheckStatusAddr accepts host:port only when host is a loopback IP,
// "localhost", or a private IPv4 (RFC 1918) or IPv6 unique-local address.
// Wildcards (0.0.0.0, ::) and hostnames are refused: the page shows the
// install's identity and state and must not be reachable from outside.
func CheckStatusAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return errors.New("must be host:port, such as 127.0.0.1:8091")
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) {
		return ErrPublicStatusAddr
	}
	return nil
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tether-agent</title>
<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:2em}</style></head>
<body><h1>tether-agent {{.AgentVersion}}</h1>
<table>
<tr><th>Install ID</th><td id="install">{{.InstallID}}</td></tr>
<tr><th>License</th><td id="license">{{.LicenseID}}: {{.LicenseState}}, expires {{when .LicenseExpiresAt}}</td></tr>
<tr><th>Last heartbeat</th><td id="heartbeat">{{when .LastHeartbeatAt}} — {{if .LastHeartbeatOK}}sent{{else}}failed{{if .LastHeartbeatError}} (<span id="heartbeat-error-class">{{.LastHeartbeatErrorClass}}</span>: {{.LastHeartbeatError}}){{end}}{{end}}</td></tr>
<tr><th>Plane</th><td id="plane">{{if .PlaneReachable}}reachable{{else}}unreachable ({{.ConsecutiveFails}} failures in a row){{end}}</td></tr>
<tr><th>Channel</th><td>{{.Channel}}</td></tr>
<tr><th>Document service</th><td>{{.DocsvcVersion}}</td></tr>
<tr><th>Available release</th><td id="release">{{if .AvailableRelease}}{{.AvailableRelease}}{{else}}none{{end}} (checked {{when .ReleaseCheckedAt}}{{if .ReleaseCheckError}}; error: {{.ReleaseCheckError}}{{end}})</td></tr>
<tr><th>Pending diagnostics</th><td id="diagnostics">{{.PendingDiagnostics}}</td></tr>
<tr><th>Egress ledger entries</th><td id="ledger">{{.LedgerEntries}}</td></tr>
<tr><th>Usage telemetry</th><td>{{if .Telemetry}}on{{else}}off{{end}}</td></tr>
</table>
<p><a href="/status.json">status.json</a></p>
</body></html>
`))

func (a *Agent) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := statusPage.Execute(w, a.Snapshot()); err != nil {
			a.log.Warn("render status page", "err", err)
		}
	})
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Snapshot())
	})
	mux.HandleFunc("GET /diagnostics/bundle.json", func(w http.ResponseWriter, r *http.Request) { // tetherctl diag export
		files, err := a.collectBundle()
		if err != nil {
			http.Error(w, "collect the diagnostics bundle: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(files)
	})
	return mux
}

// serveStatus starts the status page; stop shuts it down.
func (a *Agent) serveStatus(ctx context.Context) (stop func(), err error) {
	if err := CheckStatusAddr(a.cfg.StatusAddr); err != nil {
		return nil, fmt.Errorf("agent: status page: %w", err)
	}
	ln, err := net.Listen("tcp", a.cfg.StatusAddr)
	if err != nil {
		return nil, fmt.Errorf("agent: status page: %w", err)
	}
	srv := &http.Server{Handler: hostGuard(ln.Addr(), a.statusHandler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	a.log.Info("status page listening", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// hostGuard answers 421 to any request whose Host header is not the address
// the page listens on: its IP with its port, or, on loopback, localhost or
// another loopback IP with its port. A page on another site that rebinds
// its own name to this address still sends its own name as Host, so it
// cannot read the install's state (DNS rebinding).
func hostGuard(listen net.Addr, next http.Handler) http.Handler {
	tcp, _ := listen.(*net.TCPAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tcp == nil || !listenedHost(tcp, r.Host) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusMisdirectedRequest)
			fmt.Fprintf(w, "this status page answers only at http://%s/\n", tcp)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// listenedHost reports whether a Host header names the address l.
func listenedHost(l *net.TCPAddr, hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the scheme's default, which browsers leave out.
		host, port = hostport, "80"
	}
	if port != strconv.Itoa(l.Port) || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return l.IP.IsLoopback()
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if ip == nil {
		return false // any other name, which is what a rebinding page sends
	}
	return ip.Equal(l.IP) || l.IP.IsLoopback() && ip.IsLoopback()
}
