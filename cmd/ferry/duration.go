package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dayDuration is a flag value for an expiry: a Go duration ("36h") or a
// whole number of days ("90d"). Zero means the library's default.
type dayDuration time.Duration

func (d *dayDuration) String() string {
	if *d == 0 {
		return "" // the usage text names the default
	}
	return time.Duration(*d).String()
}

func (d *dayDuration) Type() string { return "duration" }

func (d *dayDuration) Set(s string) error {
	v, err := parseDayDuration(s)
	if err != nil {
		return err
	}
	*d = dayDuration(v)
	return nil
}

// parseDayDuration parses "90d" or any time.ParseDuration string; the result
// must be positive.
func parseDayDuration(s string) (time.Duration, error) {
	var v time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 100*365 {
			return 0, fmt.Errorf("bad duration %q: want e.g. 90d or 36h", s)
		}
		v = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if v, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("bad duration %q: want e.g. 90d or 36h", s)
		}
	}
	if v <= 0 {
		return 0, fmt.Errorf("bad duration %q: must be positive", s)
	}
	return v, nil
}
