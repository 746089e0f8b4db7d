package agent

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests' time zones, whatever the machine has
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestWindowContains: days and hours in a time zone, windows across
// midnight, and the same instant seen from another zone.
func TestWindowContains(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	ny := mustZone(t, "America/New_York")
	at := func(loc *time.Location, s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// 2026-12-04 is a Friday.
	for _, tc := range []struct {
		days  []string
		hours string
		zone  string
		at    time.Time
		want  bool
	}{
		{nil, "02:00-05:00", "Europe/Berlin", at(berlin, "2026-12-04 02:00"), true},
		{nil, "02:00-05:00", "Europe/Berlin", at(berlin, "2026-12-04 05:00"), false}, // the end is outside
		{nil, "02:00-05:00", "Europe/Berlin", at(berlin, "2026-12-04 01:59"), false},
		// 02:30 in Berlin is 20:30 the day before in New York.
		{nil, "02:00-05:00", "Europe/Berlin", at(ny, "2026-12-03 20:30"), true},
		{nil, "02:00-05:00", "America/New_York", at(berlin, "2026-12-04 02:30"), false},
		{[]string{"fri"}, "22:00-02:00", "UTC", at(time.UTC, "2026-12-04 23:00"), true},
		{[]string{"fri"}, "22:00-02:00", "UTC", at(time.UTC, "2026-12-05 01:59"), true},  // Saturday, still Friday's window
		{[]string{"fri"}, "22:00-02:00", "UTC", at(time.UTC, "2026-12-05 22:30"), false}, // Saturday's own evening
		{[]string{"fri"}, "22:00-02:00", "UTC", at(time.UTC, "2026-12-04 01:00"), false}, // Thursday's night
		{[]string{"sat-sun"}, "", "UTC", at(time.UTC, "2026-12-06 12:00"), true},
		{[]string{"sat-sun"}, "", "UTC", at(time.UTC, "2026-12-07 00:00"), false},
		{[]string{"fri-mon"}, "", "UTC", at(time.UTC, "2026-12-07 10:00"), true}, // a range that wraps the week
		{[]string{"mon-fri"}, "00:00-24:00", "UTC", at(time.UTC, "2026-12-04 23:59"), true},
		// Daylight saving: 2026-03-29 02:00-03:00 does not exist in Berlin;
		// a 01:00-04:00 window is still open at 03:30 local time.
		{nil, "01:00-04:00", "Europe/Berlin", at(berlin, "2026-03-29 03:30"), true},
	} {
		w, err := parseWindow(tc.days, tc.hours, tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Contains(tc.at); got != tc.want {
			t.Errorf("window %v %s %s contains %v = %v, want %v", tc.days, tc.hours, tc.zone, tc.at, got, tc.want)
		}
	}
}

func TestWindowNext(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	w, err := parseWindow([]string{"sat", "sun"}, "02:00-05:00", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 4, 12, 0, 0, 0, berlin) // Friday noon
	want := time.Date(2026, 12, 5, 2, 0, 0, 0, berlin)
	if got := w.Next(from); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", from, got, want)
	}
	inside := time.Date(2026, 12, 5, 3, 0, 0, 0, berlin)
	if got := w.Next(inside); !got.Equal(inside) {
		t.Errorf("Next inside the window = %v, want itself", got)
	}
	after := time.Date(2026, 12, 6, 5, 0, 0, 0, berlin) // Sunday, just closed
	if got, want := w.Next(after), time.Date(2026, 12, 12, 2, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", after, got, want)
	}
	var always *Window
	if !always.Contains(from) || always.String() != "always" {
		t.Error("a nil window is always open")
	}
	if s := w.String(); s != "sat,sun 02:00-05:00 Europe/Berlin" {
		t.Errorf("String() = %q", s)
	}
}

func TestWindowRefused(t *testing.T) {
	for _, tc := range []struct {
		days  []string
		hours string
	}{
		{nil, "05:00-05:00"}, {nil, "24:00-02:00"}, {nil, "2:00-5:00"}, {nil, "02:60-03:00"},
		{[]string{"Monday"}, ""}, {[]string{"mon-"}, ""},
	} {
		if _, err := parseWindow(tc.days, tc.hours, "UTC"); err == nil {
			t.Errorf("days %v hours %q accepted", tc.days, tc.hours)
		}
	}
}
