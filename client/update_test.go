package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/install"
)

// script is a shell program "hello" at version v; with --health it runs
// health (a shell command) and exits with its status.
func script(v, health string) []byte {
	return fmt.Appendf(nil, "#!/bin/sh\nif [ \"$1\" = --health ]; then %s; fi\necho hello %s\n", health, v)
}

const (
	healthy   = "exit 0"
	unhealthy = "echo cannot bind port 8080 >&2; exit 1"
	// rollbackBreaker deletes the kept previous executable and fails, so
	// the rollback that follows has nothing to restore (R45).
	rollbackBreaker = `rm -f "$(dirname "$0")/.hello.ferry-old"; exit 1`
)

func needShell(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on PATH: the test programs are shell scripts")
	}
}

// binary returns an installer for target with a health check that runs
// the installed program with --health.
func binary(t *testing.T, target string) *install.Binary {
	return &install.Binary{
		App: "hello", Target: target, StateDir: filepath.Join(filepath.Dir(target), "install-state"),
		Health: &install.Health{Cmd: []string{target, "--health"}, Timeout: 10e9},
	}
}

// recorder is an Installer that records what it was asked to install and
// hands it on to next (nil: only record).
type recorder struct {
	next    client.Installer
	applied []install.Artifact
	before  func(a install.Artifact) // runs before next.Apply
}

func (r *recorder) State(ctx context.Context) (install.State, error) {
	if r.next == nil {
		return install.State{}, nil
	}
	return r.next.State(ctx)
}

func (r *recorder) Apply(ctx context.Context, a install.Artifact) (install.Result, error) {
	r.applied = append(r.applied, a)
	if r.before != nil {
		r.before(a)
	}
	if r.next == nil {
		return install.Result{App: a.App, Version: a.Version}, nil
	}
	return r.next.Apply(ctx, a)
}

func TestUpdateInstallsNothingWhenUpToDate(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", script("1.0.0", healthy))
	c := f.client(t, func(cfg *client.Config) { cfg.Installed = "1.0.0" })
	rec := &recorder{}
	out, err := c.Update(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if out.Release != nil || out.Updated() || len(rec.applied) != 0 {
		t.Fatalf("up to date, but Update offered %v and applied %d artifacts", out.Release, len(rec.applied))
	}
}

func TestUpdateBinary(t *testing.T) {
	needShell(t)
	f := newFixture(t)
	v1, v2 := script("1.0.0", healthy), script("1.1.0", healthy)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", v1)
	f.publish("hello", "1.1.0", "linux/amd64", "hello", v2)
	target := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(target, v1, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t)
	cfg.Installed = "1.0.0"
	c := newClient(t, cfg)
	rec := &recorder{next: binary(t, target)}
	out, err := c.Update(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Updated() || out.From != "1.0.0" || out.Release.Version != "1.1.0" || out.Result.Path != target {
		t.Fatalf("outcome %+v, want 1.0.0 → 1.1.0 at %s", out, target)
	}
	mustFile(t, target, v2)
	// The artifact's facts are the signed ones.
	a := rec.applied[0]
	sum := sha256.Sum256(v2)
	if a.Length != int64(len(v2)) || !bytes.Equal(a.Hashes["sha256"], sum[:]) || a.Kind != install.KindBinary || a.Name != "hello" {
		t.Errorf("artifact %+v does not carry the signed length, sha256 and kind", a)
	}
	mustEmpty(t, filepath.Join(cfg.StateDir, "staging"))
	// The client now counts 1.1.0 as installed: nothing more to do.
	if out, err := c.Update(context.Background(), rec); err != nil || out.Release != nil {
		t.Fatalf("second Update: %v, %v; want nothing to do", out.Release, err)
	}
	if len(rec.applied) != 1 {
		t.Fatalf("applied %d times, want 1", len(rec.applied))
	}
}

func TestUpdateSlots(t *testing.T) {
	f := newFixture(t)
	v1 := script("1.0.0", healthy)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", v1)
	root := t.TempDir()
	c := f.client(t, nil)
	out, err := c.Update(context.Background(), &install.Slots{Root: root, App: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Updated() || out.From != "" || out.Result.Version != "1.0.0" {
		t.Fatalf("outcome %+v, want (none) → 1.0.0", out)
	}
	mustFile(t, filepath.Join(root, "hello", "current", "hello"), v1)
}

// TestUpdateSwappedDownload_R36 swaps the downloaded file (same length)
// after the client verified it and before the installer copies it: the
// installer checks the copied bytes against the signed hashes that Update
// passed on, so nothing is installed.
func TestUpdateSwappedDownload_R36(t *testing.T) {
	needShell(t)
	f := newFixture(t)
	v1, v2 := script("1.0.0", healthy), script("1.1.0", healthy)
	f.publish("hello", "1.1.0", "linux/amd64", "hello", v2)
	target := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(target, v1, 0o755); err != nil {
		t.Fatal(err)
	}
	evil := bytes.Replace(v2, []byte("1.1.0"), []byte("6.6.6"), 1)
	rec := &recorder{next: binary(t, target), before: func(a install.Artifact) {
		if err := os.WriteFile(a.File, evil, 0o755); err != nil {
			t.Error(err)
		}
	}}
	_, err := f.client(t, func(c *client.Config) { c.Installed = "1.0.0" }).Update(context.Background(), rec)
	var ve *install.VerifyError
	if !errors.Is(err, install.ErrVerify) || !errors.As(err, &ve) || ve.What != "sha256" {
		t.Fatalf("swapped download: got %v, want a sha256 VerifyError", err)
	}
	mustFile(t, target, v1)
}

// TestUpdateFailingReleaseRolledBack_R44 publishes a release that fails its
// health check: it is rolled back, marked bad, never retried, and the next
// good release is installed.
func TestUpdateFailingReleaseRolledBack_R44(t *testing.T) {
	needShell(t)
	f := newFixture(t)
	v1, v12 := script("1.1.0", healthy), script("1.3.0", unhealthy)
	f.publish("hello", "1.1.0", "linux/amd64", "hello", v1)
	f.publish("hello", "1.3.0", "linux/amd64", "hello", v12)
	target := filepath.Join(t.TempDir(), "hello")
	inst := binary(t, target)
	ctx := context.Background()
	os.WriteFile(target, v1, 0o755)
	if _, err := inst.Apply(ctx, artifactFor(t, "1.1.0", v1)); err != nil {
		t.Fatal(err)
	}

	out, err := f.client(t, func(c *client.Config) { c.Installed = "1.1.0" }).Update(ctx, inst)
	if !errors.Is(err, install.ErrRolledBack) {
		t.Fatalf("got %v, want ErrRolledBack", err)
	}
	if !out.Result.RolledBack || out.Result.Version != "1.1.0" || out.Release.Version != "1.3.0" || out.Updated() {
		t.Fatalf("outcome %+v, want 1.3.0 rolled back to 1.1.0", out)
	}
	mustFile(t, target, v1)

	// 1.3.0 is marked bad: not retried, even by a client that was told an
	// older installed version (the installer's record raises the floor).
	f.publish("hello", "1.2.0", "linux/amd64", "hello", script("1.2.0", healthy))
	rec := &recorder{next: inst}
	out, err = f.client(t, func(c *client.Config) { c.Installed = "1.0.0" }).Update(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if out.From != "1.1.0" || out.Release == nil || out.Release.Version != "1.2.0" || !out.Updated() {
		t.Fatalf("outcome %+v, want 1.1.0 → 1.2.0 (1.3.0 skipped)", out)
	}
	if len(out.Skipped) != 1 || out.Skipped[0].Version != "1.3.0" || !bytes.Contains([]byte(out.Skipped[0].Reason), []byte("cannot bind port")) {
		t.Fatalf("skipped %+v, want 1.3.0 with its health check failure", out.Skipped)
	}
	out, err = f.client(t, nil).Update(ctx, rec)
	if err != nil || out.Release != nil || len(out.Skipped) != 1 || len(rec.applied) != 1 {
		t.Fatalf("after 1.2.0: %+v, %v; want nothing tried and 1.3.0 skipped", out, err)
	}
	// A newer release is tried.
	v14 := script("1.4.0", healthy)
	f.publish("hello", "1.4.0", "linux/amd64", "hello", v14)
	if out, err = f.client(t, nil).Update(ctx, inst); err != nil || !out.Updated() || out.Release.Version != "1.4.0" {
		t.Fatalf("1.4.0: %+v, %v", out, err)
	}
	mustFile(t, target, v14)
}

// TestUpdateRollbackFailed_R45 makes the rollback fail (the health check
// deletes the kept previous executable): Update returns a
// *install.RollbackError, and later Updates install nothing until the
// rollback succeeds.
func TestUpdateRollbackFailed_R45(t *testing.T) {
	needShell(t)
	f := newFixture(t)
	v1, bad := script("1.1.0", healthy), script("1.2.0", rollbackBreaker)
	f.publish("hello", "1.2.0", "linux/amd64", "hello", bad)
	target := filepath.Join(t.TempDir(), "hello")
	inst := binary(t, target)
	ctx := context.Background()
	os.WriteFile(target, v1, 0o755)
	if _, err := inst.Apply(ctx, artifactFor(t, "1.1.0", v1)); err != nil {
		t.Fatal(err)
	}
	_, err := f.client(t, nil).Update(ctx, inst)
	var re *install.RollbackError
	if !errors.As(err, &re) || re.Version != "1.2.0" {
		t.Fatalf("got %v, want a RollbackError for 1.2.0", err)
	}
	f.publish("hello", "1.3.0", "linux/amd64", "hello", script("1.3.0", healthy))
	rec := &recorder{next: inst}
	if _, err := f.client(t, nil).Update(ctx, rec); !errors.As(err, &re) || len(rec.applied) != 0 {
		t.Fatalf("with a failed rollback pending: %v, %d applied; want the RollbackError and nothing applied", err, len(rec.applied))
	}
	// Once the previous executable is back, recovery finishes the rollback
	// and the update proceeds.
	os.WriteFile(filepath.Join(filepath.Dir(target), ".hello.ferry-old"), v1, 0o755)
	out, err := f.client(t, nil).Update(ctx, rec)
	if err != nil || !out.Updated() || out.Release.Version != "1.3.0" || out.From != "1.1.0" {
		t.Fatalf("after repair: %+v, %v; want 1.1.0 → 1.3.0", out, err)
	}
}

// artifactFor is a local artifact for a first install in a test.
func artifactFor(t *testing.T, v string, body []byte) install.Artifact {
	t.Helper()
	file := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return install.Artifact{File: file, Length: int64(len(body)), Hashes: map[string][]byte{"sha256": sum[:]},
		App: "hello", Version: v, Kind: install.KindBinary}
}

// lostState is an Installer whose record was lost (install.State.Lost).
type lostState struct{ recorder }

func (l *lostState) State(context.Context) (install.State, error) {
	return install.State{App: "hello", Lost: true}, nil
}

// An installer that lost its record (state file and copy corrupt) cannot
// tell a downgrade or a version that failed here before, so Update
// installs nothing until the caller says which version is installed (R52).
func TestUpdateRefusesLostState_R52(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", script("1.0.0", healthy))
	f.publish("hello", "1.1.0", "linux/amd64", "hello", script("1.1.0", healthy))
	inst := &lostState{}
	out, err := f.client(t, nil).Update(context.Background(), inst)
	if !errors.Is(err, install.ErrStateLost) || len(inst.applied) != 0 {
		t.Fatalf("lost state: got %v with %d artifacts applied, want ErrStateLost and nothing", err, len(inst.applied))
	}
	if out != nil && out.Release != nil {
		t.Fatalf("lost state offered %v", out.Release)
	}
	c := f.client(t, func(cfg *client.Config) { cfg.Installed = "1.0.0" })
	if out, err = c.Update(context.Background(), inst); err != nil || len(inst.applied) != 1 || out.Release.Version != "1.1.0" {
		t.Fatalf("with the installed version given: %v, %d applied", err, len(inst.applied))
	}
}
