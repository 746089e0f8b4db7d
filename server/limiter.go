package server

import "time"

// Limiter is the per-key token bucket of the admin and reporting APIs, for
// handlers outside this package (the dashboard's sign-in), so every face of
// ferry serve limits its clients the same way. It is safe for concurrent
// use, and its memory is bounded as the APIs' limiters' is.
type Limiter struct{ l *limiter }

// NewLimiter returns a Limiter of rate r per key; now is its clock (nil:
// time.Now).
func NewLimiter(r Rate, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{l: newLimiter(r, now)}
}

// Allow takes one token from key's bucket. When there is none it returns
// false and how long until there is one.
func (l *Limiter) Allow(key string) (bool, time.Duration) { return l.l.allow(key) }
