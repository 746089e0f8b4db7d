package server

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Rate is a token bucket: Burst requests at once, then one every Every.
type Rate struct {
	Burst int
	Every time.Duration
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
