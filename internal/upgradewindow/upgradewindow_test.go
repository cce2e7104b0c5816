package upgradewindow_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/upgradewindow"
)

func TestParseAndContains(t *testing.T) {
	w, err := upgradewindow.Parse("Sun 02:00-04:00; Sat 23:30-24:00;Wed 00:00-00:15")
	if err != nil {
		t.Fatal(err)
	}
	if got := w.String(); got != "Sun 02:00-04:00; Sat 23:30-24:00; Wed 00:00-00:15" {
		t.Errorf("String = %q", got)
	}
	sun := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) // a Sunday
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{sun.Add(2 * time.Hour), true},
		{sun.Add(4*time.Hour - time.Second), true},
		{sun.Add(4 * time.Hour), false},
		{sun.Add(2*time.Hour - time.Minute), false},
		{sun.Add(-time.Minute), true},       // Sat 23:59
		{sun.Add(-31 * time.Minute), false}, // Sat 23:29
		{sun.Add(3*24*time.Hour + 10*time.Minute), true},
		{sun.Add(2 * time.Hour).In(time.FixedZone("CET", 3600)), true}, // same instant, another zone
		{sun.Add(24*time.Hour + 3*time.Hour), false},
	} {
		if got := w.Contains(tt.at); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.at.UTC().Format("Mon 15:04:05"), got, tt.want)
		}
	}
	if (upgradewindow.Window{}).Contains(sun.Add(3 * time.Hour)) {
		t.Error("the empty window contains a time")
	}
}

func TestParseRejects(t *testing.T) {
	for bad, want := range map[string]string{
		"":                                 "empty",
		"sunday 02:00-04:00":               `"sunday" is not a day`,
		"Sun 2:00-04:00":                   `"2:00" is not a time`,
		"Sun 02:00-24:01":                  "not a time between",
		"Sun 04:00-02:00":                  "end must be after the start",
		"Sun 23:00-01:00":                  "two ranges",
		"Sun 02:00 04:00":                  "HH:MM-HH:MM",
		"Sun":                              "a day, a space",
		"Sun 02:00-04:00;;":                "a day, a space",
		"Sun  02:00-04:00":                 "is not a time",
		"Sun 02:60-04:00":                  "not a time between",
		"Sun 02:00-04:00, Mon 01:00-02:00": "is not a time",
		strings.Repeat("Sun 01:00-02:00;", 15) + "Sun 01:00-02:00": "more than 14",
	} {
		_, err := upgradewindow.Parse(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", bad, err, want)
		}
	}
}

// Each range's start is one schedule, and a run it starts is inside the
// window.
func TestCrons(t *testing.T) {
	w, err := upgradewindow.Parse("Sun 02:00-04:00; Sat 23:30-24:00;Wed 00:00-00:15")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cron(0 2 ? * SUN *)", "cron(30 23 ? * SAT *)", "cron(0 0 ? * WED *)"}
	if got := w.Crons(); !slices.Equal(got, want) {
		t.Fatalf("Crons = %q, want %q", got, want)
	}
	starts := []time.Time{time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 23, 30, 0, 0, time.UTC), time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC)}
	for i, at := range starts {
		if !w.Contains(at) || w.Contains(at.Add(-time.Minute)) {
			t.Errorf("%s: the start of %s is not where the window starts", want[i], at)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"Sun 02:00-04:00", "Sat 23:30-24:00; Sun 00:00-01:00", "Mon 00:00-24:00", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := upgradewindow.Parse(s)
		if err != nil {
			if !strings.Contains(err.Error(), "upgrade window") {
				t.Fatalf("error does not say what it is about: %v", err)
			}
			return
		}
		if len(w) == 0 || len(w) > upgradewindow.MaxRanges {
			t.Fatalf("accepted %d ranges", len(w))
		}
		for _, r := range w {
			if r.Start < 0 || r.End > 24*60 || r.Start >= r.End {
				t.Fatalf("accepted range %+v", r)
			}
		}
		if crons := w.Crons(); len(crons) != len(w) {
			t.Fatalf("%d crons for %d ranges", len(crons), len(w))
		}
		again, err := upgradewindow.Parse(w.String())
		if err != nil || !slices.Equal(again, w) {
			t.Fatalf("round trip of %q: %v, %v", w.String(), again, err)
		}
	})
}
