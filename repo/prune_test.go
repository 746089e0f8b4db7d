package repo

import (
	"fmt"
	"testing"

	"github.com/ferry-updates/ferry/rollout"
)

// TestHaltFitsFullDecisions_F6: a repository whose decision document grew
// to the 64 KiB bound, one entry per release ever decided (each widened to
// everyone in stable, so equal to no entry at all), can still halt a
// release it never decided about: the entries that decide nothing are
// pruned, those that decide something are kept, and the client verifies
// the halt. Before the pruning the halt did not fit and was refused.
func TestHaltFitsFullDecisions_F6(t *testing.T) {
	holder, server, _, clk := rolloutFixture(t)
	var batch []Batch
	const n = 700
	for i := range n {
		v := fmt.Sprintf("2.0.%d", i)
		batch = append(batch, Batch{Release: hello(v), Files: []string{writeFile(t, "hello", "hello "+v)}})
	}
	if _, err := holder.PublishBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// The decisions as they grew before pruning: every release decided
	// and widened to everyone, two that still decide something, filled to
	// just under the bound.
	doc := &rollout.Doc{App: "hello", Releases: map[string]rollout.Entry{
		"1.1.0": {Channel: "beta", BasisPoints: 500, State: rollout.Active, Salt: rollout.NewSalt()},
		"1.0.0": {Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Pulled, Salt: rollout.NewSalt()},
	}}
	full, next := 0, ""
	for i := range n {
		v := fmt.Sprintf("2.0.%d", i)
		doc.Releases[v] = rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Active, Salt: rollout.NewSalt()}
		b, err := doc.Marshal() // refuses a document over the bound
		if err != nil {
			delete(doc.Releases, v)
			next = v // undecided, and its entry does not fit any more
			break
		}
		full = len(b)
	}
	if next == "" || full < rollout.MaxDocLength-200 {
		t.Fatalf("the grown document is %d bytes; want it within 200 bytes of %d", full, rollout.MaxDocLength)
	}
	signGrownDoc(t, server, doc)
	if d, err := server.Rollouts("hello"); err != nil || len(d.Releases) < 550 {
		t.Fatalf("the grown document: %d entries, %v", len(d.Releases), err)
	}

	e, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: next})
	if err != nil {
		t.Fatalf("halt with a full decision document: %v", err)
	}
	if e.State != rollout.Halted {
		t.Fatalf("halt: %+v", e)
	}
	got := newTUFClient(t, holder.dir, clk).doc("hello")
	if len(got.Releases) != 3 || got.Releases[next].State != rollout.Halted ||
		got.Releases["1.1.0"] != doc.Releases["1.1.0"] || got.Releases["1.0.0"] != doc.Releases["1.0.0"] {
		t.Fatalf("the client trusts %d entries; want %s halted and the decisions about 1.1.0 and 1.0.0 kept, nothing else", len(got.Releases), next)
	}
}

// signGrownDoc signs doc as hello's decisions as it is, unpruned, with the
// online keys: the state a repository reached before pruning existed.
func signGrownDoc(t *testing.T, r *Repo, doc *rollout.Doc) {
	t.Helper()
	unlock, err := r.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	st, err := r.loadState()
	if err != nil {
		t.Fatal(err)
	}
	md, err := rolloutRole(st)
	if err != nil {
		t.Fatal(err)
	}
	data, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := setDataTarget(md, rollout.DocPath("hello"), data)
	ch := change{apps: []string{rollout.RoleName}}
	if _, err := r.signerKeys(ctx, st, ch); err != nil {
		t.Fatal(err)
	}
	if err := writeDataTargets(r.dir, []dataTarget{f}); err != nil {
		t.Fatal(err)
	}
	if err := r.commit(ctx, st, ch); err != nil {
		t.Fatal(err)
	}
}

// TestLaterPlatformKeepsDecision_F6: a release's decision goes with the
// first publish of its version. Once widened to everyone (an entry equal to
// the default, so pruned), another platform of the version published later
// with its own share does not narrow it again; a new version still takes
// the decision it is published with.
func TestLaterPlatformKeepsDecision_F6(t *testing.T) {
	holder, server, _, clk := rolloutFixture(t)
	five := &rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: 500, State: rollout.Active}
	linux := Release{App: "hello", Version: "1.3.0", Platform: "linux/amd64", Rollout: five}
	if err := holder.Publish(ctx, linux, []string{writeFile(t, "hello", "hello 1.3.0")}); err != nil {
		t.Fatal(err)
	}
	if d, _ := server.Rollouts("hello"); d.Releases["1.3.0"].BasisPoints != 500 {
		t.Fatalf("published at 5%%: %+v", d.Releases)
	}
	if _, err := server.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "1.3.0", BasisPoints: rollout.Full}); err != nil {
		t.Fatal(err)
	}
	if d, _ := server.Rollouts("hello"); len(d.Releases) != 0 {
		t.Fatalf("widened to everyone, the entry decides nothing and is pruned: %+v", d.Releases)
	}
	darwin := Release{App: "hello", Version: "1.3.0", Platform: "darwin/arm64", Rollout: five}
	if err := holder.Publish(ctx, darwin, []string{writeFile(t, "hello", "hello 1.3.0 darwin")}); err != nil {
		t.Fatal(err)
	}
	if d := newTUFClient(t, holder.dir, clk).doc("hello"); len(d.Releases) != 0 {
		t.Fatalf("a later platform narrowed 1.3.0 again: %+v", d.Releases)
	}
	if err := holder.Publish(ctx, Release{App: "hello", Version: "1.4.0", Platform: "linux/amd64", Rollout: five}, []string{writeFile(t, "hello", "hello 1.4.0")}); err != nil {
		t.Fatal(err)
	}
	if d, _ := server.Rollouts("hello"); d.Releases["1.4.0"].BasisPoints != 500 {
		t.Fatalf("a new version's decision: %+v", d.Releases)
	}
}
