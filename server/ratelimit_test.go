package server

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterEvictionKeepsSpentBuckets_R55: when maxBuckets keys are in
// use, the limiter drops the fullest buckets, never every bucket: a key
// that has spent its burst is still refused after a flood of new keys
// (review 9 F4: the limiter cleared every bucket at 10,000 keys, so many
// IPv6 addresses reset everyone's limit), and memory stays bounded.
func TestLimiterEvictionKeepsSpentBuckets_R55(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(Rate{Burst: 5, Every: time.Minute}, func() time.Time { return now })
	for range 5 {
		l.allow("victim")
	}
	if ok, _ := l.allow("victim"); ok {
		t.Fatal("a sixth request within a burst of 5 passed")
	}
	for i := range 3 * maxBuckets {
		if ok, _ := l.allow(fmt.Sprintf("2001:db8::%x", i)); !ok {
			t.Fatalf("new key %d refused", i)
		}
	}
	if ok, _ := l.allow("victim"); ok {
		t.Fatalf("after %d new keys, the key that spent its burst passed again: the flood reset its bucket", 3*maxBuckets)
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Fatalf("%d buckets kept, more than %d", n, maxBuckets)
	}
	now = now.Add(time.Minute)
	if ok, _ := l.allow("victim"); !ok {
		t.Fatal("the spent key after its refill time: refused")
	}
}
