package client_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

// TestPlantedRootInStateDir_R70: a root v2 planted in STATE/metadata (as
// root.json and as the intermediate 2.root.json), signed only by the
// attacker's keys, with the attacker's timestamp, snapshot and targets
// beside it, does not replace the root the application ships: the client
// refuses the attacker's server and keeps updating from the real one.
// Before, a stored root of a higher version was trusted if it was signed by
// its own keys.
func TestPlantedRootInStateDir_R70(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("genuine"))
	cfg := f.config(t)
	var ev events
	cfg.Log = ev.logger()
	if _, err := newClient(t, cfg).Check(ctx); err != nil {
		t.Fatal(err)
	}

	evil := reposim.New(time.Now())
	evil.AddTarget("targets", "hello/6.6.6/linux-amd64/hello", []byte("evil"),
		map[string]any{"ferry": map[string]any{"app": "hello", "version": "6.6.6", "platform": "linux/amd64", "kind": "binary"}})
	evil.BumpRoot()
	for range 3 {
		evil.MarkDirty("targets")
		evil.Publish()
	}
	md := filepath.Join(cfg.StateDir, "metadata")
	write(t, filepath.Join(md, "root.json"), evil.RootBytes(2))
	write(t, filepath.Join(md, "2.root.json"), evil.RootBytes(2))
	write(t, filepath.Join(md, "timestamp.json"), evil.Bytes("timestamp.json"))
	write(t, filepath.Join(md, "snapshot.json"), evil.Bytes(itoa(evil.Snapshot().Signed.Version)+".snapshot.json"))
	write(t, filepath.Join(md, "targets.json"), evil.Bytes(itoa(evil.Targets("targets").Signed.Version)+".targets.json"))

	attacker := serveTLS(t, evil.Handler())
	acfg := cfg
	acfg.URLs = []string{attacker.URL}
	if rel, err := newClient(t, acfg).Check(ctx); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("Check against the attacker's server with the planted root = %v, %v; want ErrBadSignature", rel, err)
	}
	if n := ev.count(t, "metadata.cache_ignore"); n < 2 {
		t.Errorf("%d metadata.cache_ignore events, want the planted root and timestamp reported:\n%s", n, ev.buf.String())
	}
	rel, err := newClient(t, cfg).Check(ctx)
	if err != nil || rel == nil || rel.Version != "1.0.0" {
		t.Fatalf("Check against the real server = %+v, %v; want hello 1.0.0", rel, err)
	}
}

func itoa(v int64) string { return fmt.Sprint(v) }
