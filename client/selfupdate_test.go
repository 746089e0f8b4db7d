package client_test

import (
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/install"
)

// buildSelfUpdate builds testdata/selfupdate (a real program that embeds
// this package and updates itself) with version v; healthy "no" makes a
// build that fails its health check.
func buildSelfUpdate(t *testing.T, dir, v, healthy string) []byte {
	t.Helper()
	out := filepath.Join(dir, v, "selfupdate")
	ldflags := "-X main.version=" + v + " -X main.healthy=" + healthy
	cmd := exec.Command("go", "build", "-o", out, "-ldflags", ldflags, "./testdata/selfupdate")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go build selfupdate %s: %v\n%s", v, err, b)
		return nil
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Error(err)
	}
	return b
}

// TestSelfUpdateEndToEnd publishes two builds of a real program with
// package repo, serves them with package server over HTTPS on 127.0.0.1,
// and runs the first build: it updates itself in place to the second and
// re-executes it. Then a third build that fails its health check is
// published: it is rolled back, marked bad, and the second keeps running.
func TestSelfUpdateEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot build the self-updating test program")
	}
	if runtime.GOOS == "windows" {
		t.Skip("install.Reexec on Windows starts a new process; this test expects exec in place")
	}
	tmp := t.TempDir()
	build := filepath.Join(tmp, "build")
	var v1, v2, v3 []byte
	var wg sync.WaitGroup // the three links run in parallel
	wg.Go(func() { v1 = buildSelfUpdate(t, build, "1.0.0", "yes") })
	wg.Go(func() { v2 = buildSelfUpdate(t, build, "2.0.0", "yes") })
	wg.Go(func() { v3 = buildSelfUpdate(t, build, "3.0.0", "no") })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	t.Run("first self-update fails health", func(t *testing.T) { firstSelfUpdateFails(t, v1, v3) })

	f := newFixture(t)
	platform := runtime.GOOS + "/" + runtime.GOARCH
	f.publish("selfupdate", "1.0.0", platform, "selfupdate", v1)
	f.publish("selfupdate", "2.0.0", platform, "selfupdate", v2)
	rootFile, caFile := filepath.Join(tmp, "root.json"), filepath.Join(tmp, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(rootFile, f.root, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(tmp, "app", "selfupdate")
	os.MkdirAll(filepath.Dir(exe), 0o755)
	if err := os.WriteFile(exe, v1, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(tmp, "state")
	run := func(want ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, "-repo", f.srv.URL, "-root", rootFile, "-ca", caFile, "-state", state)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("selfupdate: %v\n%s", err, b)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("output lacks %q:\n%s", w, b)
			}
		}
		return string(b)
	}

	// v1 updates itself to v2, re-executes, and v2 finds nothing newer.
	run("selfupdate 1.0.0 running", "selfupdate 1.0.0: installed "+exe+", restarting",
		"selfupdate 2.0.0 running", "selfupdate 2.0.0 is up to date")
	mustFile(t, exe, v2)
	if out := run("selfupdate 2.0.0 running", "selfupdate 2.0.0 is up to date"); strings.Contains(out, "1.0.0") {
		t.Errorf("second run still mentions 1.0.0:\n%s", out)
	}

	// A bad v3: its health check fails, v2 is restored and keeps running.
	f.publish("selfupdate", "3.0.0", platform, "selfupdate", v3)
	out := run("selfupdate 2.0.0 running", "new version failed and was rolled back",
		"selfupdate 3.0.0: cannot start", "selfupdate 2.0.0 done")
	if strings.Contains(out, "selfupdate 3.0.0 running") {
		t.Errorf("v3 ran as the program:\n%s", out)
	}
	mustFile(t, exe, v2)
	b := &install.Binary{App: "selfupdate", Target: exe, StateDir: filepath.Join(state, "install")}
	st, err := b.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := st.Bad["3.0.0"]; !bad || st.Installed == nil || st.Installed.Version != "2.0.0" {
		t.Fatalf("state %+v: want 2.0.0 installed and 3.0.0 marked bad", st)
	}
	// v3 is not tried again; v2 still runs.
	out = run("selfupdate 2.0.0 running", "not retrying 3.0.0, marked bad", "selfupdate 2.0.0 is up to date")
	if strings.Contains(out, "rolled back") || strings.Contains(out, "restarting") {
		t.Errorf("v3 was tried again:\n%s", out)
	}
	mustFile(t, exe, v2)
}

// firstSelfUpdateFails runs v1, put in place by other means (as a package
// manager would), with only an unhealthy 3.0.0 newer: its first
// self-update is rolled back and v1 keeps running (R44).
func firstSelfUpdateFails(t *testing.T, v1, v3 []byte) {
	f := newFixture(t)
	platform := runtime.GOOS + "/" + runtime.GOARCH
	f.publish("selfupdate", "3.0.0", platform, "selfupdate", v3)
	tmp := t.TempDir()
	rootFile, caFile := filepath.Join(tmp, "root.json"), filepath.Join(tmp, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	os.WriteFile(rootFile, f.root, 0o644)
	os.WriteFile(caFile, ca, 0o644)
	exe := filepath.Join(tmp, "app", "selfupdate")
	os.MkdirAll(filepath.Dir(exe), 0o755)
	if err := os.WriteFile(exe, v1, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(tmp, "state")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, exe, "-repo", f.srv.URL, "-root", rootFile, "-ca", caFile, "-state", state).CombinedOutput()
	if err != nil {
		t.Fatalf("selfupdate: %v\n%s", err, b)
	}
	for _, w := range []string{"selfupdate 1.0.0 running", "new version failed and was rolled back", "selfupdate 1.0.0 done"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("output lacks %q:\n%s", w, b)
		}
	}
	mustFile(t, exe, v1)
	inst := &install.Binary{App: "selfupdate", Target: exe, StateDir: filepath.Join(state, "install")}
	st, err := inst.State(context.Background())
	if _, bad := st.Bad["3.0.0"]; err != nil || !bad || st.Installed == nil || st.Installed.Version != "" {
		t.Fatalf("state %+v %v: want the adopted v1 installed and 3.0.0 marked bad", st, err)
	}
}
