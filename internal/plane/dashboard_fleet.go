package plane

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tetherhq/tether/internal/plane/planestore"
	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/wire"
)

// fleetQuery is the fleet page's filter and sort, read from the query
// string so that links, bookmarks and the page without script all work.
type fleetQuery struct {
	Customer string // case-insensitive substring of the customer's name
	Health   string // ok | degraded | down | unknown
	Channel  string
	Only     string // stale | expiring
	Sort     string // a fleetSorts key; empty keeps activation order
	Desc     bool
}

// fleetSorts are the fleet table's sortable columns.
var fleetSorts = map[string]func(a, b fleetRow) int{
	"install": func(a, b fleetRow) int { return strings.Compare(a.ID, b.ID) },
	"customer": func(a, b fleetRow) int {
		return strings.Compare(strings.ToLower(a.Customer), strings.ToLower(b.Customer))
	},
	"health":    func(a, b fleetRow) int { return cmp.Compare(healthRank(a.Health), healthRank(b.Health)) },
	"version":   func(a, b fleetRow) int { return compareVersions(a.Version, b.Version) },
	"channel":   func(a, b fleetRow) int { return strings.Compare(a.Channel, b.Channel) },
	"license":   func(a, b fleetRow) int { return a.LicenseExpires.Compare(b.LicenseExpires) },
	"heartbeat": func(a, b fleetRow) int { return cmp.Compare(a.LastHeartbeatAgeSec, b.LastHeartbeatAgeSec) },
	"stale":     func(a, b fleetRow) int { return cmp.Compare(boolRank(a.StaleNow), boolRank(b.StaleNow)) },
	"warnings":  func(a, b fleetRow) int { return cmp.Compare(len(a.Warnings), len(b.Warnings)) },
}

var fleetHealths = []string{planestore.HealthOK, planestore.HealthDegraded, planestore.HealthDown, planestore.HealthUnknown}

// healthRank orders health from best to worst.
func healthRank(h string) int {
	if i := slices.Index([]string{planestore.HealthOK, planestore.HealthUnknown, planestore.HealthDegraded, planestore.HealthDown}, h); i >= 0 {
		return i
	}
	return 1
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareVersions orders by semver precedence; versions that are not
// semver (an install that reported none) sort first, among themselves as
// text.
func compareVersions(a, b string) int {
	va, errA := release.ParseVersion(a)
	vb, errB := release.ParseVersion(b)
	if errA == nil && errB == nil {
		return va.Compare(vb)
	}
	return cmp.Or(cmp.Compare(boolRank(errA == nil), boolRank(errB == nil)), strings.Compare(a, b))
}

// parseFleetQuery reads the fleet page's query string. Unknown or repeated
// parameters and bad values are refused with a message naming the value
// and what is allowed, never guessed at.
func parseFleetQuery(v url.Values) (fleetQuery, error) {
	var q fleetQuery
	for k, vals := range v {
		if len(vals) > 1 {
			return fleetQuery{}, fmt.Errorf("parameter %q is given %d times; give it once", k, len(vals))
		}
		val := vals[0]
		switch k {
		case "customer":
			if len(val) > 200 || !utf8.ValidString(val) || strings.IndexFunc(val, unicode.IsControl) >= 0 {
				return fleetQuery{}, fmt.Errorf("customer filter must be at most 200 characters of printable text")
			}
			q.Customer = strings.TrimSpace(val)
		case "health":
			if val != "" && !slices.Contains(fleetHealths, val) {
				return fleetQuery{}, fmt.Errorf("health %q is not one of %s", val, strings.Join(fleetHealths, ", "))
			}
			q.Health = val
		case "channel":
			if val != "" && !wire.ValidChannel(val) {
				return fleetQuery{}, fmt.Errorf("channel %q must be 1-32 characters of a-z 0-9 -", val)
			}
			q.Channel = val
		case "only":
			if val != "" && val != "stale" && val != "expiring" {
				return fleetQuery{}, fmt.Errorf("only %q must be stale or expiring", val)
			}
			q.Only = val
		case "sort":
			if _, ok := fleetSorts[val]; val != "" && !ok {
				return fleetQuery{}, fmt.Errorf("sort %q is not a column; use one of %s", val, strings.Join(sortKeys(), ", "))
			}
			q.Sort = val
		case "dir":
			if val != "" && val != "asc" && val != "desc" {
				return fleetQuery{}, fmt.Errorf("dir %q must be asc or desc", val)
			}
			q.Desc = val == "desc"
		default:
			return fleetQuery{}, fmt.Errorf("unknown parameter %q; the fleet page takes customer, health, channel, only, sort and dir", k)
		}
	}
	return q, nil
}

func sortKeys() []string {
	keys := make([]string, 0, len(fleetSorts))
	for k := range fleetSorts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Values is the query string that gives q back; parseFleetQuery reads it.
func (q fleetQuery) Values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("customer", q.Customer)
	set("health", q.Health)
	set("channel", q.Channel)
	set("only", q.Only)
	set("sort", q.Sort)
	if q.Desc {
		v.Set("dir", "desc")
	}
	return v
}

// SortURL is the link a column heading points at: sort by key, ascending,
// or descending when the table is already sorted by it ascending.
func (q fleetQuery) SortURL(key string) string {
	q.Desc = q.Sort == key && !q.Desc
	q.Sort = key
	return "/?" + q.Values().Encode()
}

// Arrow marks the column the table is sorted by.
func (q fleetQuery) Arrow(key string) string {
	switch {
	case q.Sort != key:
		return ""
	case q.Desc:
		return " ▼"
	}
	return " ▲"
}

// Filtered reports whether any filter (not the sort) is set.
func (q fleetQuery) Filtered() bool {
	return q.Customer != "" || q.Health != "" || q.Channel != "" || q.Only != ""
}

// fleetRow is one install as the fleet table shows it.
type fleetRow struct {
	InstallView
	DaysLeft int  // whole days until the license expires; negative after
	Expiring bool // expires within the warning period (or has expired)
}

func (q fleetQuery) match(r fleetRow) bool {
	switch {
	case q.Customer != "" && !strings.Contains(strings.ToLower(r.Customer), strings.ToLower(q.Customer)):
		return false
	case q.Health != "" && r.Health != q.Health:
		return false
	case q.Channel != "" && r.Channel != q.Channel:
		return false
	case q.Only == "stale" && !r.StaleNow:
		return false
	case q.Only == "expiring" && !r.Expiring:
		return false
	}
	return true
}

// apply filters and sorts rows, keeping activation order among equals.
func (q fleetQuery) apply(rows []fleetRow) []fleetRow {
	var out []fleetRow
	for _, r := range rows {
		if q.match(r) {
			out = append(out, r)
		}
	}
	if by := fleetSorts[q.Sort]; by != nil {
		slices.SortStableFunc(out, func(a, b fleetRow) int {
			if q.Desc {
				return by(b, a)
			}
			return by(a, b)
		})
	}
	return out
}

// fleet is what the fleet page and its refreshed fragment show.
type fleet struct {
	Query      fleetQuery
	Rows       []fleetRow // after filter and sort
	Total      int        // installs before filtering
	Stale      []fleetRow // every stale install, whatever the filter
	Expiring   []fleetRow // every unrevoked install whose license expires within WarnDays
	WarnDays   int
	StaleAfter int   // missed intervals that make an install stale
	Refresh    int64 // milliseconds between refreshes
}

func (s *Server) fleet(r *http.Request, q fleetQuery) (fleet, error) {
	ins, err := s.store.Installs(r.Context())
	if err != nil {
		return fleet{}, err
	}
	f := fleet{Query: q, Total: len(ins), WarnDays: s.cfg.LicenseWarnDays, StaleAfter: s.cfg.StaleAfter, Refresh: s.cfg.DashboardRefresh.Milliseconds()}
	now := s.now()
	rows := make([]fleetRow, 0, len(ins))
	for _, in := range ins {
		row := fleetRow{InstallView: s.view(in), DaysLeft: daysLeft(in.LicenseExpires, now)}
		row.Expiring = !in.Revoked && in.LicenseExpires.Sub(now) <= time.Duration(s.cfg.LicenseWarnDays)*24*time.Hour
		rows = append(rows, row)
		if row.StaleNow {
			f.Stale = append(f.Stale, row)
		}
		if row.Expiring {
			f.Expiring = append(f.Expiring, row)
		}
	}
	slices.SortStableFunc(f.Expiring, fleetSorts["license"])
	f.Rows = q.apply(rows)
	return f, nil
}
