package plane

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/wire"
)

func TestParseFleetQuery(t *testing.T) {
	for _, tc := range []struct {
		query, want, err string
	}{
		{"", "{Customer: Health: Channel: Only: Sort: Desc:false}", ""},
		{"customer=+Acme+&health=down&channel=beta&only=stale&sort=license&dir=desc",
			"{Customer:Acme Health:down Channel:beta Only:stale Sort:license Desc:true}", ""},
		{"customer=&health=&channel=&only=", "{Customer: Health: Channel: Only: Sort: Desc:false}", ""},
		{"health=sick", "", `health "sick" is not one of ok, degraded, down, unknown`},
		{"only=dead", "", `only "dead" must be stale or expiring`},
		{"sort=secret", "", `sort "secret" is not a column; use one of channel, customer, health, heartbeat, install, license, stale, version, warnings`},
		{"dir=up", "", `dir "up" must be asc or desc`},
		{"channel=Beta", "", `channel "Beta" must be 1-32 characters of a-z 0-9 -`},
		{"customer=a%0Ab", "", "customer filter must be at most 200 characters of printable text"},
		{"customer=" + strings.Repeat("x", 201), "", "customer filter must be at most 200 characters of printable text"},
		{"health=ok&health=down", "", `parameter "health" is given 2 times; give it once`},
		{"token=abc", "", `unknown parameter "token"; the fleet page takes customer, health, channel, only, sort and dir`},
	} {
		v, _ := url.ParseQuery(tc.query)
		q, err := parseFleetQuery(v)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.query, err, tc.err)
			}
			continue
		}
		if got := fmt.Sprintf("%+v", q); err != nil || got != tc.want {
			t.Errorf("%q: %s %v, want %s", tc.query, got, err, tc.want)
		}
	}
}

// FuzzFleetQuery: the fleet page's query string is outside input. Parsing
// never panics, and what it accepts survives a round trip through the
// links the page builds from it.
func FuzzFleetQuery(f *testing.F) {
	for _, s := range []string{"", "customer=Acme&sort=health&dir=desc", "health=ok&health=down", "only=expiring&channel=stable",
		"customer=%00", "sort=license", "dir=", "a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseFleetQuery(v)
		if err != nil {
			return
		}
		again, err := parseFleetQuery(q.Values())
		if err != nil || again != q {
			t.Fatalf("%q: parsed %+v, its own link gives %+v, %v", raw, q, again, err)
		}
		for key := range fleetSorts {
			u, _ := url.Parse(q.SortURL(key))
			if s, err := parseFleetQuery(u.Query()); err != nil || s.Sort != key || s.Customer != q.Customer {
				t.Fatalf("sort link %q: %+v %v", q.SortURL(key), s, err)
			}
		}
	})
}

func TestFleetFilterAndSort(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	row := func(id, customer, health, version string, stale, expiring bool, age int64) fleetRow {
		return fleetRow{InstallView: InstallView{Install: planestore.Install{ID: id, Customer: customer, Health: health, Version: version,
			LicenseExpires: now.Add(time.Duration(age) * time.Hour)}, StaleNow: stale, LastHeartbeatAgeSec: age}, Expiring: expiring}
	}
	rows := []fleetRow{
		row("in_a", "Acme", planestore.HealthOK, "1.10.0", false, false, 30),
		row("in_b", "beta corp", planestore.HealthDown, "1.9.2", true, false, 10),
		row("in_c", "ACME east", planestore.HealthDegraded, "", false, true, 20),
	}
	ids := func(rs []fleetRow) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		q    fleetQuery
		want string
	}{
		{fleetQuery{}, "in_a in_b in_c"},
		{fleetQuery{Customer: "acme"}, "in_a in_c"},
		{fleetQuery{Only: "stale"}, "in_b"},
		{fleetQuery{Only: "expiring"}, "in_c"},
		{fleetQuery{Health: planestore.HealthDown}, "in_b"},
		{fleetQuery{Sort: "health", Desc: true}, "in_b in_c in_a"},
		{fleetQuery{Sort: "version"}, "in_c in_b in_a"}, // none reported, then semver order
		{fleetQuery{Sort: "customer"}, "in_a in_c in_b"},
		{fleetQuery{Sort: "heartbeat", Desc: true}, "in_a in_c in_b"},
		{fleetQuery{Sort: "license"}, "in_b in_c in_a"},
		{fleetQuery{Customer: "acme", Sort: "stale"}, "in_a in_c"},
	} {
		if got := ids(tc.q.apply(rows)); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.q, got, tc.want)
		}
	}
}

func TestUpgradeHistory(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	up := wire.UpgradeAttempt{Version: "1.5.0", Action: "upgrade", Outcome: "succeeded", At: at}
	// newest first, as the install page lists heartbeats
	hbs := []wire.Heartbeat{
		{Release: "1.5.0", LastUpgrade: up},
		{Release: "1.5.0", LastUpgrade: up},
		{Release: "1.4.0"},
		{Release: "1.4.0"},
		{},
	}
	var rows []historyRow
	for i, hb := range hbs {
		rows = append(rows, historyRow{HeartbeatEntry: planestore.HeartbeatEntry{At: at.Add(-time.Duration(i) * time.Minute)}, Heartbeat: hb})
	}
	got := upgradeHistory(rows)
	want := []upgradeEvent{{Seen: at.Add(-time.Minute), Release: "1.5.0", Attempt: up}, {Seen: at.Add(-3 * time.Minute), Release: "1.4.0"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("upgrade history %+v, want %+v", got, want)
	}
}

func TestFormatDaysLeft(t *testing.T) {
	for d, want := range map[int]string{12: "12 days left", 1: "1 day left", 0: "expires today", -1: "expired 1 day ago", -3: "expired 3 days ago"} {
		if got := formatDaysLeft(d); got != want {
			t.Errorf("%d: %q, want %q", d, got, want)
		}
	}
}
