// Package upgradewindow is the maintenance window in which tether-upgrade
// may apply a staged release (deployment.yaml's plane.upgrade_window,
// TETHER_UPGRADE_WINDOW). The CDK app schedules a run at each range's start
// (Crons); the run checks it is still inside (Contains). The grammar is
// small and strict, in UTC:
//
//	window = range *( ";" [" "] range )
//	range  = day " " HH:MM "-" HH:MM      e.g. "Sun 02:00-04:00"
//	day    = Mon | Tue | Wed | Thu | Fri | Sat | Sun
//
// A range starts and ends on its day (end after start, 24:00 allowed as an
// end); a window that crosses midnight is two ranges ("Sat 23:00-24:00;
// Sun 00:00-01:00"). At most 14 ranges.
package upgradewindow

import (
	"fmt"
	"strings"
	"time"
)

// Range is one weekday's span, in minutes after midnight UTC.
type Range struct {
	Day        time.Weekday
	Start, End int // 0 <= Start < End <= 1440
}

// Window is one or more ranges; the zero Window contains no time.
type Window []Range

// MaxRanges bounds a window.
const MaxRanges = 14

var days = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// Parse reads a window; its errors name the bad part and the fix.
func Parse(s string) (Window, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("upgrade window is empty: write it as \"Sun 02:00-04:00\" (UTC), ranges separated by \";\"")
	}
	parts := strings.Split(s, ";")
	if len(parts) > MaxRanges {
		return nil, fmt.Errorf("upgrade window has %d ranges, more than %d", len(parts), MaxRanges)
	}
	var w Window
	for i, p := range parts {
		if i > 0 {
			p = strings.TrimPrefix(p, " ")
		}
		r, err := parseRange(p)
		if err != nil {
			return nil, fmt.Errorf("upgrade window range %q: %w; write it as \"Sun 02:00-04:00\" (UTC, a day of Mon Tue Wed Thu Fri Sat Sun, then HH:MM-HH:MM on that day)", clip(p), err)
		}
		w = append(w, r)
	}
	return w, nil
}

func parseRange(p string) (Range, error) {
	day, span, ok := strings.Cut(p, " ")
	if !ok {
		return Range{}, fmt.Errorf("want a day, a space and a time range")
	}
	r := Range{Day: -1}
	for i, d := range days {
		if d == day {
			r.Day = time.Weekday(i)
		}
	}
	if r.Day < 0 {
		return Range{}, fmt.Errorf("%q is not a day", clip(day))
	}
	from, to, ok := strings.Cut(span, "-")
	var err error
	if !ok {
		return Range{}, fmt.Errorf("want HH:MM-HH:MM after the day")
	}
	if r.Start, err = minutes(from); err != nil {
		return Range{}, err
	}
	if r.End, err = minutes(to); err != nil {
		return Range{}, err
	}
	if r.Start >= r.End || r.Start == 24*60 {
		return Range{}, fmt.Errorf("the end must be after the start on the same day (cross midnight with two ranges)")
	}
	return r, nil
}

// minutes reads HH:MM exactly: two digits each, 00:00 to 24:00.
func minutes(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not a time HH:MM", clip(s))
	}
	var v [4]int
	for i, c := range []byte(s[:2] + s[3:]) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a time HH:MM", s)
		}
		v[i] = int(c - '0')
	}
	h, m := v[0]*10+v[1], v[2]*10+v[3]
	if h > 24 || m > 59 || h == 24 && m != 0 {
		return 0, fmt.Errorf("%q is not a time between 00:00 and 24:00", s)
	}
	return h*60 + m, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Contains reports whether t (in any zone; compared in UTC) is inside the
// window.
func (w Window) Contains(t time.Time) bool {
	t = t.UTC()
	m := t.Hour()*60 + t.Minute()
	for _, r := range w {
		if r.Day == t.Weekday() && m >= r.Start && m < r.End {
			return true
		}
	}
	return false
}

// String is the window in Parse's grammar.
func (w Window) String() string {
	var parts []string
	for _, r := range w {
		parts = append(parts, fmt.Sprintf("%s %02d:%02d-%02d:%02d", days[r.Day], r.Start/60, r.Start%60, r.End/60, r.End%60))
	}
	return strings.Join(parts, "; ")
}

// Crons are the EventBridge Scheduler cron expressions, in UTC, of the
// ranges' starts, one per range.
func (w Window) Crons() []string {
	var out []string
	for _, r := range w {
		out = append(out, fmt.Sprintf("cron(%d %d ? * %s *)", r.Start%60, r.Start/60, strings.ToUpper(days[r.Day])))
	}
	return out
}
