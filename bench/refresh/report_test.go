package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/bench/internal/harness"
)

// set builds a report set whose ferry and go-tuf medians have the given
// no-change times (ms) and ferry's no-change fetch count.
func set(n int, ferryMS, gotufAMS, gotufBMS int, files int64) reportSet {
	ms := func(v int) int64 { return int64(time.Duration(v) * time.Millisecond) }
	nc := func(v int) map[string]harness.Result {
		return map[string]harness.Result{
			"first":            {Nanos: ms(v * 10)},
			"nochange":         {Nanos: ms(v), Files: files, Requests: files + 1, Bytes: 400, AllocBytes: 100 << 10},
			"nochange-refresh": {Nanos: ms(v), Files: files, AllocBytes: 100 << 10},
		}
	}
	return reportSet{ds: &dataset{n: n}, med: map[string]map[string]harness.Result{
		"ferry": nc(ferryMS), cases[1].name: nc(gotufAMS), cases[2].name: nc(gotufBMS),
	}}
}

func TestGoals(t *testing.T) {
	tests := []struct {
		name     string
		sets     []reportSet
		met, not int
	}{
		{"all met", []reportSet{set(1000, 5, 10, 50, 1), set(10000, 5, 20, 500, 1), set(100000, 6, 40, 5000, 1)}, 8, 0},
		{"too slow vs flat", []reportSet{set(1000, 5, 10, 50, 1), set(10000, 5, 20, 60, 1)}, 5, 1},
		{"slower than (a)", []reportSet{set(10000, 30, 20, 5000, 1)}, 2, 1},
		{"two files", []reportSet{set(10000, 5, 20, 500, 2)}, 2, 1},
		{"grows", []reportSet{set(1000, 5, 10, 50, 1), set(10000, 50, 200, 5000, 1)}, 4, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			r := &report{sets: tt.sets}
			if err := r.writeGoals(&b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if got := strings.Count(out, "**met**"); got != tt.met {
				t.Errorf("%d met, want %d:\n%s", got, tt.met, out)
			}
			if got := strings.Count(out, "**NOT MET**"); got != tt.not {
				t.Errorf("%d not met, want %d:\n%s", got, tt.not, out)
			}
		})
	}
}
