package trust_test

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkRefreshNoChange measures a refresh when nothing changed: one
// timestamp fetch and signature check, whatever the number of targets.
func BenchmarkRefreshNoChange(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			e := newEnv(b)
			for i := 0; i < n; i++ {
				e.repo.AddTarget("targets", fmt.Sprintf("app/1.0.%d/linux-amd64/app", i), []byte{byte(i)}, nil)
			}
			e.repo.Publish()
			c := e.refreshed()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := c.Refresh(ctx, e.repo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
