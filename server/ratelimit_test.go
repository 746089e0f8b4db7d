package server

import (
	"fmt"
	"strings"
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

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Rate
	}{
		{"10000,2000/s", DefaultAddressRate},
		{"1000,200/s", DefaultTokenReportRate},
		{"20,1/s", DefaultCredentialRate},
		{"20,1/m", Rate{Burst: 20, Every: time.Minute}},
		{"1,2/h", Rate{Burst: 1, Every: 30 * time.Minute}},
		{"5,1/30s", Rate{Burst: 5, Every: 30 * time.Second}},
		{"5,3/s", Rate{Burst: 5, Every: time.Second / 3}},
	} {
		got, err := ParseRate(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "0", "10000", "2000/s", "0,1/s", "1,0/s", "-1,1/s", "1,-1/s", "1,1/0s", "1,1/-1s",
		"1,1/d", "x,1/s", "1,x/s", "1.5,1/s", "1,1.5/s", "1,1/s,", " 1,1/s", "1,1/", "1000000001,1/s", "1,1000000001/s",
		"1,2/1ns", "1,1/s/s"} {
		r, err := ParseRate(in)
		if err == nil {
			t.Errorf("ParseRate(%q) = %+v, want an error", in, r)
		} else if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "e.g. 10000,2000/s") {
			t.Errorf("ParseRate(%q): %q, want one line with an example", in, err)
		}
	}
}

// TestRateRoundTrip: String is what ParseRate reads back to the same rate.
func TestRateRoundTrip(t *testing.T) {
	for _, r := range []Rate{DefaultAddressRate, DefaultTokenReportRate, DefaultCredentialRate, DefaultEnrollRate,
		DefaultReportIPRate, {Burst: 1, Every: 7 * time.Second}, {Burst: 3, Every: 2 * time.Hour}, {Burst: 9, Every: time.Second / 3}} {
		got, err := ParseRate(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", r.String(), got, err, r)
		}
	}
	if s := DefaultAddressRate.String(); s != "10000,2000/s" {
		t.Errorf("DefaultAddressRate.String() = %q", s)
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10000,2000/s", "20,1/m", "5,1/30s", "5,3/s", "1,1/0s", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.Burst <= 0 || r.Every <= 0 {
			t.Fatalf("ParseRate(%q) = %+v", s, r)
		}
		if back, err := ParseRate(r.String()); err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %+v; its String %q reads back as %+v, %v", s, r, r.String(), back, err)
		}
	})
}
