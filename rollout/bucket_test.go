package rollout

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBucketProperties is the bucketing goal of issue 8, over 1,000,000
// random 128-bit install IDs: at p% the share offered is within 0.5 points
// of p; widening p to p' removes nobody; two releases' 5% cohorts overlap
// no more than chance (about 5% of each other). The shares are set with
// Doc.Apply, as the publisher does, and an installation is offered the
// release when its Bucket for the entry's salt is below the entry's share;
// on the first 10,000 IDs Choose is asked too and must agree. The figures
// are logged (go test ./rollout -run TestBucketProperties -v) and recorded
// in BENCHMARKS.md.
func TestBucketProperties(t *testing.T) {
	const n, asked = 1_000_000, 10_000
	start := time.Now()
	ids := newIDs(n, uint64(time.Now().UnixNano()))
	signed := []string{"1.4.1", "1.4.2", "1.4.3"}
	buckets := map[string][]int{} // salt -> the bucket of each ID
	bucketsOf := func(salt string) []int {
		if b, ok := buckets[salt]; ok {
			return b
		}
		b := make([]int, n)
		for i, id := range ids {
			b[i] = Bucket(id, salt)
		}
		buckets[salt] = b
		return b
	}
	d := &Doc{App: "hello"}
	was := make([]bool, n)
	for _, bp := range []int{50, 100, 500, 1000, 5000, Full} { // 0.5%, 1%, 5%, 10%, 50%, 100%
		e, err := d.Apply(Action{Kind: Start, Version: "1.4.2", BasisPoints: bp}, signed, "")
		if err != nil {
			t.Fatal(err)
		}
		b, count := bucketsOf(e.Salt), 0
		for i, id := range ids {
			offered := b[i] < e.BasisPoints
			if was[i] && !offered {
				t.Fatalf("install ID %s: offered 1.4.2, then not at %s: widening removed it", id, Percent(bp))
			}
			if i < asked {
				in := Input{Versions: signed[:2], Doc: d, Installation: Installation{ID: id, Installed: "1.4.1"}}
				if got := Choose(in).Version == "1.4.2"; got != offered {
					t.Fatalf("install ID %s at %s: Choose offers 1.4.2: %v; bucket %d", id, Percent(bp), got, b[i])
				}
			}
			was[i] = offered
			count += b2i(offered)
		}
		got := 100 * float64(count) / n
		t.Logf("share at %s: %.3f%% of %d install IDs offered (off by %+.3f points)", Percent(bp), got, n, got-float64(bp)/100)
		if math.Abs(got-float64(bp)/100) > 0.5 {
			t.Errorf("at %s, %.3f%% offered: more than 0.5 points off", Percent(bp), got)
		}
	}
	if len(buckets) != 1 {
		t.Fatalf("widening changed the salt: %d salts", len(buckets))
	}
	// Two releases' 5% cohorts, each with the salt Apply gave it.
	d = &Doc{App: "hello"}
	a, _ := d.Apply(Action{Kind: Start, Version: "1.4.2", BasisPoints: 500}, signed, "")
	b, _ := d.Apply(Action{Kind: Start, Version: "1.4.3", BasisPoints: 500}, signed, "")
	ba, bb := bucketsOf(a.Salt), bucketsOf(b.Salt)
	inA, inB, both := 0, 0, 0
	for i := range ids {
		x, y := ba[i] < 500, bb[i] < 500
		inA, inB, both = inA+b2i(x), inB+b2i(y), both+b2i(x && y)
	}
	ofA, ofB := 100*float64(both)/float64(inA), 100*float64(both)/float64(inB)
	t.Logf("5%% cohorts of two releases: %d and %d install IDs, %d in both (%.2f%% of the first, %.2f%% of the second)", inA, inB, both, ofA, ofB)
	for _, o := range []float64{ofA, ofB} {
		if o < 4 || o > 6 {
			t.Errorf("the 5%% cohorts of two releases overlap by %.2f%%, want about 5%% (4-6)", o)
		}
	}
	t.Logf("%d install IDs in %v", n, time.Since(start).Round(time.Millisecond))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBucketUniform: the buckets of 100,000 IDs fill the 100 ranges of 1%
// evenly (chi-square, 99 degrees of freedom, well under the 0.1% critical
// value 148.2), and the same ID and salt always give the same bucket.
func TestBucketUniform(t *testing.T) {
	const n, bins = 100_000, 100
	var count [bins]int
	for _, id := range newIDs(n, 5) {
		b := Bucket(id, salt1)
		if b < 0 || b >= Full || Bucket(id, salt1) != b {
			t.Fatalf("Bucket(%s) = %d", id, b)
		}
		count[b*bins/Full]++
	}
	chi2, want := 0.0, float64(n)/bins
	for _, c := range count {
		chi2 += (float64(c) - want) * (float64(c) - want) / want
	}
	if chi2 > 148.2 {
		t.Fatalf("buckets not uniform: chi-square %.1f over %d bins", chi2, bins)
	}
	if Bucket("a", "bc") == Bucket("ab", "c") && Bucket("x", "bc") == Bucket("xb", "c") {
		t.Error("salt and install ID are not separated in the hash")
	}
}

// TestBucketVectors pins the cohort formula (docs/rollouts.md): changing it
// would move installations between cohorts of running rollouts. The first
// value is also what this prints:
//
//	printf 'ferry-cohort/v1\0SALT\0ID' | sha256sum   # first 16 hex digits, mod 10000
func TestBucketVectors(t *testing.T) {
	for _, c := range []struct {
		id, salt string
		want     int
	}{
		{"0123456789abcdef0123456789abcdef", "5f0c2a9e7b13d4486a1e0f9c3b2d7e61", 2828},
		{"ffffffffffffffffffffffffffffffff", "00000000000000000000000000000000", 1015},
		{"", "", 9703},
		{strings.Repeat("a", 200), "5f0c2a9e7b13d4486a1e0f9c3b2d7e61", Bucket(strings.Repeat("a", 100)+strings.Repeat("a", 100), "5f0c2a9e7b13d4486a1e0f9c3b2d7e61")},
	} {
		if got := Bucket(c.id, c.salt); got != c.want {
			t.Errorf("Bucket(%.40q, %q) = %d, want %d", c.id, c.salt, got, c.want)
		}
	}
}

func BenchmarkBucket(b *testing.B) {
	ids := newIDs(1024, 9)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Bucket(ids[i%len(ids)], salt1)
	}
}

// BenchmarkChoose: one installation's choice among 50 releases, each with
// a decision (staged shares, some halted, one pulled), and a minimum.
func BenchmarkChoose(b *testing.B) {
	in := Input{Doc: &Doc{App: "hello", Releases: map[string]Entry{}}, MinVersion: "1.2.0"}
	salts := newIDs(50, 11)
	for i := range 50 {
		v := "1." + strconv.Itoa(i/10) + "." + strconv.Itoa(i%10)
		in.Versions = append(in.Versions, v)
		e := Entry{Channel: DefaultChannel, BasisPoints: Full, State: Active, Salt: salts[i]}
		switch {
		case i >= 45:
			e.BasisPoints = 500 * (i - 44)
		case i%7 == 3:
			e.State = Halted
		}
		in.Doc.Releases[v] = e
	}
	in.Doc.Releases["1.4.4"] = Entry{Channel: DefaultChannel, BasisPoints: Full, State: Pulled, Salt: salts[44]}
	in.Installation = Installation{Channel: "beta", Installed: "1.4.4"}
	ids := newIDs(1024, 12)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.ID = ids[i%len(ids)]
		if c := Choose(in); c.Version == "" {
			b.Fatalf("no choice: %+v", c)
		}
	}
}
