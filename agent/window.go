package agent

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is a maintenance window: the days of the week and the hours of
// the day, in one time zone, during which the agent may install. Outside
// it the agent still checks and downloads (verified, into its cache), so
// that the install is quick when the window opens.
//
// Hours that end before they start cross midnight and belong to the day
// they start on: days ["fri"] with hours 22:00-02:00 is Friday 22:00 to
// Saturday 02:00. Times are wall-clock times in Location, so a window
// keeps its local hours across daylight saving changes.
type Window struct {
	Days     [7]bool // indexed by time.Weekday; all true when no days are given
	Start    int     // minutes after midnight, 0..1439
	End      int     // minutes after midnight, 1..1440; End < Start crosses midnight
	Location *time.Location
}

// Contains reports whether t is inside the window.
func (w *Window) Contains(t time.Time) bool {
	if w == nil {
		return true
	}
	t = t.In(w.Location)
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if w.Start < w.End {
		return w.Days[day] && m >= w.Start && m < w.End
	}
	yesterday := (day + 6) % 7
	return (w.Days[day] && m >= w.Start) || (w.Days[yesterday] && m < w.End)
}

// Next returns the first time at or after t inside the window: t itself
// when it is inside, else the next opening (within eight days; a window
// always opens within a week).
func (w *Window) Next(t time.Time) time.Time {
	if w.Contains(t) {
		return t
	}
	l := t.In(w.Location)
	for i := 0; i <= 8; i++ {
		d := time.Date(l.Year(), l.Month(), l.Day()+i, w.Start/60, w.Start%60, 0, 0, w.Location)
		if d.After(t) && w.Days[d.Weekday()] && w.Contains(d) {
			return d
		}
	}
	return t // unreachable for a valid window
}

// String describes the window in the config's own words.
func (w *Window) String() string {
	if w == nil {
		return "always"
	}
	var days []string
	all := true
	for i := 1; i <= 7; i++ { // Monday first
		d := time.Weekday(i % 7)
		if w.Days[d] {
			days = append(days, dayNames[d])
		} else {
			all = false
		}
	}
	s := fmt.Sprintf("%s-%s %s", clock(w.Start), clock(w.End), w.Location)
	if !all {
		s = strings.Join(days, ",") + " " + s
	}
	return s
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// parseWindow builds a Window from the config's days, hours and time zone.
func parseWindow(days []string, hours, zone string) (*Window, error) {
	w := &Window{End: 24 * 60}
	if len(days) == 0 {
		w.Days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range days {
		if err := w.addDays(d); err != nil {
			return nil, err
		}
	}
	if hours != "" {
		start, end, ok := strings.Cut(hours, "-")
		var err error
		if w.Start, err = parseClock(start, false); ok && err == nil {
			w.End, err = parseClock(end, true)
		}
		if !ok || err != nil {
			return nil, fmt.Errorf("hours %q: want HH:MM-HH:MM, for example 02:00-05:00 or 22:00-02:00", hours)
		}
		if w.Start == w.End {
			return nil, fmt.Errorf("hours %q: the window is empty; use 00:00-24:00 for the whole day", hours)
		}
	}
	loc, err := loadZone(zone)
	if err != nil {
		return nil, err
	}
	w.Location = loc
	return w, nil
}

// addDays marks one day ("mon") or a range of days ("mon-fri", "fri-mon").
func (w *Window) addDays(s string) error {
	from, to, isRange := strings.Cut(s, "-")
	a, b := dayIndex(from), dayIndex(to)
	if !isRange {
		b = a
	}
	if a < 0 || b < 0 {
		return fmt.Errorf("days: %q is not a day or a range of days (mon, tue, wed, thu, fri, sat, sun; mon-fri)", s)
	}
	for d := a; ; d = (d + 1) % 7 {
		w.Days[d] = true
		if d == b {
			return nil
		}
	}
}

func dayIndex(s string) int {
	for i, n := range dayNames {
		if s == n {
			return i
		}
	}
	return -1
}

// parseClock parses HH:MM; 24:00 only as an end.
func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59:
		return 0, fmt.Errorf("bad time %q", s)
	case hh == 24 && mm == 0 && end:
		return 24 * 60, nil
	case hh > 23:
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

// loadZone loads an IANA time zone; "" and "Local" are the machine's.
func loadZone(zone string) (*time.Location, error) {
	if zone == "" || zone == "Local" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("time_zone %q: unknown time zone (an IANA name such as Europe/Berlin or UTC; the system's tzdata must have it)", zone)
	}
	return loc, nil
}
