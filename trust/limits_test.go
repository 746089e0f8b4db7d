package trust_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

// greedy is a Source that answers every request with one byte more than
// the limit it is given (a mirror sending endless data), and refuses
// limits above max, the role's maximum.
type greedy struct {
	*reposim.Repo
	file string
	max  int64
	asks []int64
}

func (g *greedy) FetchMetadata(ctx context.Context, name string, maxLen int64) ([]byte, error) {
	if name != g.file {
		return g.Repo.FetchMetadata(ctx, name, maxLen)
	}
	g.asks = append(g.asks, maxLen)
	if maxLen > g.max {
		return nil, fmt.Errorf("limit %d for %s is above the role's maximum %d", maxLen, name, g.max)
	}
	return make([]byte, maxLen+1), nil
}

// R16: a parent that signs a huge length for snapshot, targets or a
// delegated role cannot lift the limit above the role's maximum; a longer
// body is ErrTooLarge.
func TestSignedLengthCapped_R16(t *testing.T) {
	const huge = 1 << 40
	for _, role := range []string{"snapshot", "targets", "a"} {
		t.Run(role, func(t *testing.T) {
			e := newEnv(t)
			e.repo.Delegate("targets", "a", []string{"a/*"}, false)
			e.repo.AddTarget("a", "a/1", []byte("1"), nil)
			e.repo.Publish()
			max := int64(trust.MaxTargetsLength)
			switch role {
			case "snapshot":
				e.repo.Timestamp().Signed.Meta["snapshot.json"].Length = huge
				e.repo.PublishTimestamp()
				max = trust.MaxSnapshotLength
			default:
				e.repo.Snapshot().Signed.Meta[role+".json"].Length = huge
				e.repo.Publish()
			}
			g := &greedy{Repo: e.repo, file: servedName(e.repo, role), max: max}
			c := e.client()
			err := c.Refresh(context.Background(), g)
			if role == "a" {
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Target(context.Background(), g, "a/1")
			}
			wantKind(t, err, trust.ErrTooLarge)
			if len(g.asks) != 1 || g.asks[0] != max {
				t.Fatalf("limits asked for %s: %v, want [%d]", g.file, g.asks, max)
			}
		})
	}
}
