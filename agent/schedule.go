package agent

import (
	"math/rand/v2"
	"time"
)

// schedule decides how long the agent waits before its next cycle: the
// interval plus a random jitter in [0, jitter), so that a fleet started
// together does not check together; after n failed cycles in a row the
// interval is doubled n-1 times, up to backoffMax (the jitter comes on
// top), and one good cycle resets it.
type schedule struct {
	interval, jitter, backoffMax time.Duration
	failures                     int
	rand                         func(n int64) int64 // in [0, n); rand.Int64N
}

func newSchedule(c *Config, rnd func(int64) int64) *schedule {
	if rnd == nil {
		rnd = rand.Int64N
	}
	return &schedule{interval: c.Interval, jitter: c.Jitter, backoffMax: c.BackoffMax, rand: rnd}
}

// next records the outcome of a cycle and returns the wait before the
// next one.
func (s *schedule) next(ok bool) time.Duration {
	if ok {
		s.failures = 0
	} else {
		s.failures++
	}
	base := s.interval
	for i := 1; i < s.failures && base < s.backoffMax; i++ {
		base *= 2
	}
	return min(base, max(s.backoffMax, s.interval)) + s.spread()
}

// spread is a random jitter in [0, jitter).
func (s *schedule) spread() time.Duration {
	if s.jitter <= 0 {
		return 0
	}
	return time.Duration(s.rand(int64(s.jitter)))
}
