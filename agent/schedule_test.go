package agent

import (
	"testing"
	"time"
)

func TestScheduleJitterBounds(t *testing.T) {
	c := &Config{Interval: time.Minute, Jitter: 10 * time.Second, BackoffMax: time.Hour}
	var asked []int64
	for _, r := range []func(int64) int64{
		func(n int64) int64 { asked = append(asked, n); return 0 },
		func(n int64) int64 { asked = append(asked, n); return n - 1 },
	} {
		s := newSchedule(c, r)
		d := s.next(true)
		if d < time.Minute || d >= time.Minute+10*time.Second {
			t.Errorf("wait %v outside [1m, 1m10s)", d)
		}
	}
	if asked[0] != int64(10*time.Second) {
		t.Errorf("jitter drawn from [0, %v), want [0, 10s)", time.Duration(asked[0]))
	}
	// The default source stays in bounds too.
	s := newSchedule(c, nil)
	for range 1000 {
		if d := s.next(true); d < time.Minute || d >= time.Minute+10*time.Second {
			t.Fatalf("wait %v outside [1m, 1m10s)", d)
		}
	}
	s = newSchedule(&Config{Interval: time.Minute, BackoffMax: time.Hour}, nil)
	if d := s.next(true); d != time.Minute {
		t.Errorf("no jitter: wait %v, want 1m", d)
	}
}

func TestScheduleBackoff(t *testing.T) {
	c := &Config{Interval: time.Minute, BackoffMax: 10 * time.Minute}
	s := newSchedule(c, func(int64) int64 { return 0 })
	var got []time.Duration
	for _, ok := range []bool{false, false, false, false, false, true, false} {
		got = append(got, s.next(ok))
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, time.Minute, time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
	// Many failures never overflow past the cap.
	for range 100 {
		if d := s.next(false); d != 10*time.Minute && d != time.Minute {
			if d > 10*time.Minute || d <= 0 {
				t.Fatalf("wait %v after many failures", d)
			}
		}
	}
}
