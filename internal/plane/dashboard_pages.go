package plane

import (
	"embed"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/wire"
)

//go:embed static/fleet.js
var staticFS embed.FS

// handleStatic serves the dashboard's one script.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	js, err := staticFS.ReadFile("static/fleet.js")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(js)
}

type column struct{ Key, Label string }

// fleetColumns are the fleet table's headings; a Key makes one sortable.
var fleetColumns = []column{{"install", "Install"}, {"customer", "Customer"}, {"health", "Health"},
	{"version", "Version"}, {"", "Release"}, {"", "Last upgrade"}, {"channel", "Channel"},
	{"license", "License"}, {"heartbeat", "Last heartbeat"}, {"stale", "Stale"}, {"warnings", "Warnings"}}

type indexPage struct {
	page
	Fleet   fleet
	Columns []column
	Healths []string
	Pending []planestore.Diagnostic
}

// fleetFor reads the request's filter and builds the fleet; a bad filter is
// answered 400 naming the parameter, and false returned.
func (s *Server) fleetFor(w http.ResponseWriter, r *http.Request) (fleet, bool) {
	q, err := parseFleetQuery(r.URL.Query())
	if err != nil {
		s.dashError(w, r, http.StatusBadRequest, "Filter not applied: "+err.Error()+".")
		return fleet{}, false
	}
	f, err := s.fleet(r, q)
	if err != nil {
		s.dashFail(w, r, "fleet", err)
		return fleet{}, false
	}
	return f, true
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	f, ok := s.fleetFor(w, r)
	if !ok {
		return
	}
	p := indexPage{page: s.pageFor(r, "Fleet"), Fleet: f, Columns: fleetColumns, Healths: fleetHealths}
	var err error
	if p.Pending, err = s.store.Diagnostics(r.Context(), "", planestore.DiagRequested); err != nil {
		s.dashFail(w, r, "fleet", err)
		return
	}
	s.render(w, "index", http.StatusOK, p)
}

// handleFleetRows is the fleet page's refresh: the flags, count and table
// body for the same query, as HTML rendered by the same templates.
func (s *Server) handleFleetRows(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.fleetFor(w, r); ok {
		s.render(w, "rows", http.StatusOK, f)
	}
}

type historyRow struct {
	planestore.HeartbeatEntry
	Heartbeat wire.Heartbeat
}

// upgradeEvent is a heartbeat that reported a release or last upgrade
// different from the one before it.
type upgradeEvent struct {
	Seen    time.Time
	Release string
	Attempt wire.UpgradeAttempt
}

type installPage struct {
	page
	Detail    InstallDetail
	DaysLeft  int
	History   []historyRow
	Upgrades  []upgradeEvent
	Alerts    []planestore.AlertRecord
	Requested *planestore.Diagnostic // the request this page was opened after making
}

// dashboardHistory is how many heartbeats the install page shows;
// dashboardAlerts how many alerts.
const (
	dashboardHistory = 100
	dashboardAlerts  = 50
)

func (s *Server) handleDashboardInstall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !wire.ValidID(id) {
		s.dashError(w, r, http.StatusBadRequest, "install ID must be 1-64 characters of A-Z a-z 0-9 _ -")
		return
	}
	d, err := s.installDetail(r, id, dashboardHistory)
	if err != nil {
		s.dashFail(w, r, "install "+id, err)
		return
	}
	p := installPage{page: s.pageFor(r, "Install "+id), Detail: d, DaysLeft: daysLeft(d.Install.LicenseExpires, s.now())}
	if p.Alerts, err = s.store.InstallAlerts(r.Context(), id, dashboardAlerts); err != nil {
		s.dashFail(w, r, "install "+id, err)
		return
	}
	for _, e := range d.History {
		row := historyRow{HeartbeatEntry: e}
		// The body was re-encoded from a validated wire.Heartbeat, so this
		// only fails if the database was edited by hand; show the row anyway.
		_ = json.Unmarshal(e.Body, &row.Heartbeat)
		p.History = append(p.History, row)
	}
	p.Upgrades = upgradeHistory(p.History)
	// After a request the page names it; an ID that is not this install's
	// is ignored.
	if req := r.URL.Query().Get("requested"); req != "" {
		for _, dg := range d.Diagnostics {
			if dg.ID == req {
				p.Requested = &dg
			}
		}
	}
	s.render(w, "install", http.StatusOK, p)
}

// upgradeHistory picks, from heartbeats newest first, those whose release
// or last upgrade changed from the heartbeat before, newest first.
func upgradeHistory(rows []historyRow) []upgradeEvent {
	var out []upgradeEvent
	var prev upgradeEvent
	for i := len(rows) - 1; i >= 0; i-- {
		hb := rows[i].Heartbeat
		ev := upgradeEvent{Seen: rows[i].At, Release: hb.Release, Attempt: hb.LastUpgrade}
		if ev.Release == "" && ev.Attempt.Action == "" {
			continue
		}
		if len(out) == 0 || ev.Release != prev.Release || !sameAttempt(ev.Attempt, prev.Attempt) {
			out = append(out, ev)
		}
		prev = ev
	}
	slices.Reverse(out)
	return out
}

func sameAttempt(a, b wire.UpgradeAttempt) bool {
	return a.Version == b.Version && a.Action == b.Action && a.Outcome == b.Outcome &&
		a.Reason == b.Reason && a.At.Equal(b.At)
}

type licensesPage struct {
	page
	Licenses []planestore.LicenseRecord
}

func (s *Server) handleLicensesPage(w http.ResponseWriter, r *http.Request) {
	ls, err := s.store.Licenses(r.Context())
	if err != nil {
		s.dashFail(w, r, "licenses", err)
		return
	}
	s.render(w, "licenses", http.StatusOK, licensesPage{page: s.pageFor(r, "Licenses"), Licenses: ls})
}

type errorPage struct {
	page
	Message string
	Back    string
}

// dashError answers a dashboard request with an error page; msg must be
// safe to show (IDs and rules, never request content beyond a named value).
func (s *Server) dashError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	back := "/"
	if id := r.PathValue("id"); wire.ValidID(id) && strings.HasPrefix(r.URL.Path, "/installs/") {
		back = "/installs/" + id
	}
	s.render(w, "error", status, errorPage{page: s.pageFor(r, http.StatusText(status)), Message: msg, Back: back})
}

// dashFail answers with failure's status and message (admin.go).
func (s *Server) dashFail(w http.ResponseWriter, r *http.Request, op string, err error) {
	status, msg := s.failure(op, err)
	s.dashError(w, r, status, msg)
}
