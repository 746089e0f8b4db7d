package trust_test

import (
	"testing"

	"github.com/ferry-updates/ferry/trust"
)

// R11 after a reload: a timestamp is persisted before its snapshot
// verifies, so a failed snapshot leaves a newer timestamp in the Store than
// the trusted snapshot. The trusted snapshot must stay the reference for the
// rollback check (spec 5.5.5) of the next snapshot, in the same client and
// in a client loaded from the Store (client.mirror reloads after any failed
// mirror attempt).
func TestTwoStepRollbackAfterReload_R11(t *testing.T) {
	for _, reload := range []bool{false, true} {
		name := "same client"
		if reload {
			name = "reloaded client"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			m := e.repo.Snapshot().Signed.Meta
			old := *m["targets.json"]
			e.repo.MarkDirty("targets")
			e.repo.Publish()
			c := e.refreshed() // trusts targets v2

			// The attacker (snapshot and timestamp keys) names targets v1.
			m["targets.json"] = &old
			e.repo.Publish()
			snapName := servedName(e.repo, "snapshot")
			// Step 1: the new timestamp verifies and is persisted; the
			// snapshot it names does not.
			e.repo.Serve(snapName, []byte(`{"broken": true}`))
			if err := e.refresh(c); err == nil {
				t.Fatal("broken snapshot accepted")
			}
			if got, _ := e.store.Load("timestamp"); string(got) != string(e.repo.Bytes("timestamp.json")) {
				t.Fatal("test setup: the new timestamp was not persisted")
			}
			// Step 2: the signed snapshot with the rolled-back targets.
			e.repo.ClearOverrides()
			if reload {
				c = e.client()
			}
			wantKind(t, e.refresh(c), trust.ErrRollback)
			if !reload {
				return
			}
			// A reloaded client still has no trusted targets to offer and
			// refuses again.
			wantKind(t, e.refresh(e.client()), trust.ErrRollback)
		})
	}
}
