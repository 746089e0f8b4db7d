package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkObserve is the cost of one event: encode, write, fsync
// (BENCHMARKS.md section 7).
func BenchmarkObserve(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{MaxSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := testEvents(3)[2]
	for b.Loop() {
		l.Observe(e)
	}
	if err := l.Err(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkObserveParallel is Observe from many goroutines at once: they
// take turns, one fsync each.
func BenchmarkObserveParallel(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{MaxSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := testEvents(3)[2]
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Observe(e)
		}
	})
	if err := l.Err(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkVerify is the verifier's speed on a log of 10,000 lines.
func BenchmarkVerify(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{MaxSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range testEvents(10000) {
		l.Observe(e)
	}
	l.Close()
	data, err := os.ReadFile(l.path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Verify(bytes.NewReader(data), Start); err != nil {
			b.Fatal(err)
		}
	}
}
