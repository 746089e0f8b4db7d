package server

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a token bucket: Burst requests at once, then one every Every.
type Rate struct {
	Burst int
	Every time.Duration
}

// maxRateNumber bounds both numbers of a rate's text form.
const maxRateNumber = 1_000_000_000

// ParseRate reads a rate as "BURST,N/UNIT": BURST requests at once, then N
// every UNIT, which is s, m, h or a Go duration ("10000,2000/s",
// "20,1/m", "5,1/30s"). Both numbers must be positive integers of at
// most a billion, and the rate no faster than one per nanosecond.
func ParseRate(s string) (Rate, error) {
	bad := func(why string) (Rate, error) {
		return Rate{}, fmt.Errorf("bad rate %q: %s (want BURST,N/s, e.g. 10000,2000/s)", s, why)
	}
	burst, rest, ok := strings.Cut(s, ",")
	num, unit, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return bad("no BURST,N/UNIT")
	}
	b, err := strconv.Atoi(burst)
	if err != nil || b <= 0 || b > maxRateNumber {
		return bad("the burst must be a whole number from 1 to a billion")
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > maxRateNumber {
		return bad("the rate must be a whole number from 1 to a billion per unit")
	}
	per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if !ok {
		if per, err = time.ParseDuration(unit); err != nil || per <= 0 {
			return bad("the unit must be s, m, h or a positive duration")
		}
	}
	if per/time.Duration(n) <= 0 {
		return bad("faster than one per nanosecond")
	}
	return Rate{Burst: b, Every: per / time.Duration(n)}, nil
}

// String is r in the form ParseRate reads.
func (r Rate) String() string {
	if r.Every <= 0 {
		return strconv.Itoa(r.Burst) + ",0/s"
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Second, "s"}, {time.Minute, "m"}, {time.Hour, "h"}} {
		if r.Every <= u.d && u.d%r.Every == 0 {
			return fmt.Sprintf("%d,%d/%s", r.Burst, u.d/r.Every, u.name)
		}
	}
	return fmt.Sprintf("%d,1/%s", r.Burst, r.Every)
}

// maxBuckets bounds a limiter's memory: past it, buckets that have filled
// up again (clients that went quiet) are dropped.
const maxBuckets = 10000

// limiter keeps one token bucket per key (a client address or a token ID).
// It is safe for concurrent use.
type limiter struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate, now func() time.Time) *limiter {
	return &limiter{rate: r, now: now, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket. When there is none it returns
// false and how long until there is one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = b
	}
	l.fill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(l.rate.Every))
	return false, wait
}

// peek reports whether key's bucket holds a token, without taking it, and
// if not how long until it does.
func (l *limiter) peek(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true, 0
	}
	l.fill(b, l.now())
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.rate.Every))
}

// charge takes one token from key's bucket if it has one: requests that
// passed peek at the same moment leave it empty, not in debt.
func (l *limiter) charge(key string) { l.allow(key) }

func (l *limiter) fill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(l.rate.Burst), b.tokens+float64(el)/float64(l.rate.Every))
		b.last = now
	}
}

// evict drops full buckets (clients that went quiet: dropping them
// forgets nothing); if too many are still in use, it drops the tenth of
// them that are fullest, never all: dropping a bucket gives its key back
// only what it had spent, so a flood of new keys (many IPv6 addresses)
// cannot give the keys that emptied theirs a full bucket again.
func (l *limiter) evict(now time.Time) {
	type keyed struct {
		key    string
		tokens float64
	}
	all := make([]keyed, 0, len(l.buckets))
	for k, b := range l.buckets {
		if l.fill(b, now); b.tokens >= float64(l.rate.Burst) {
			delete(l.buckets, k)
			continue
		}
		all = append(all, keyed{k, b.tokens})
	}
	if len(l.buckets) < maxBuckets {
		return
	}
	slices.SortFunc(all, func(a, b keyed) int { return cmp.Compare(b.tokens, a.tokens) })
	for _, k := range all[:len(all)-maxBuckets*9/10] {
		delete(l.buckets, k.key)
	}
}
