package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRolloutHelpTrue: rollout status --help says what status does (it
// signs nothing and needs no passphrase) and shows no other command's
// example; rollout start --help shows no --budget default that a plain
// --percent start would not have.
func TestRolloutHelpTrue(t *testing.T) {
	c := &cli{t: t, env: map[string]string{}}
	st := c.ok("rollout", "status", "--help")
	for _, bad := range []string{"to sign the decision", "signed here", "--passphrase-file", "\n  ferry rollout start "} {
		if strings.Contains(st, bad) {
			t.Errorf("rollout status --help says %q:\n%s", bad, st)
		}
	}
	start := c.ok("rollout", "start", "--help")
	for _, line := range strings.Split(start, "\n") {
		if strings.Contains(line, "--budget string") && strings.Contains(line, "(default") {
			t.Errorf("rollout start --help shows a --budget default: %s", line)
		}
	}
	if help := c.ok("serve", "--help"); strings.Contains(help, "with the same tokens") || !strings.Contains(help, "rollout token") {
		t.Errorf("serve --help does not say rollout decisions take a rollout token")
	}
	if help := c.ok("token", "--help"); !strings.Contains(help, "rollout tokens") {
		t.Errorf("token --help does not mention rollout tokens:\n%s", help)
	}
}

// TestAuditShowUnknownKind: a --kind that is no kind and no family is an
// error naming the families, not "no events".
func TestAuditShowUnknownKind(t *testing.T) {
	c := &cli{t: t, env: map[string]string{}}
	log := filepath.Join(moduleRoot(t), "audit", "testdata", "example.log")
	code, out, errs := c.run(context.Background(), "audit", "show", log, "--kind", "bogus")
	if code == 0 || strings.Contains(out, "no events") || !strings.Contains(errs, `unknown --kind "bogus"`) || !strings.Contains(errs, "install, health") {
		t.Fatalf("audit show --kind bogus: exit %d, %q, %q; want an error naming the families", code, out, errs)
	}
	for _, k := range []string{"install", "install.rolled_back", "health.failed"} {
		if code, _, errs := c.run(context.Background(), "audit", "show", log, "--kind", k); code != 0 {
			t.Errorf("audit show --kind %s: exit %d, %s", k, code, errs)
		}
	}
}

// TestDashboardCredentialNoSilentOverwrite: an existing credential file
// is not replaced without --force, and the refusal says to restart.
func TestDashboardCredentialNoSilentOverwrite(t *testing.T) {
	c := &cli{t: t, env: map[string]string{}}
	out := filepath.Join(t.TempDir(), "dashboard.cred")
	os.WriteFile(out, []byte("old\n"), 0o600)
	code, _, errs := c.run(context.Background(), "dashboard", "credential", "--out", out)
	if code == 0 || !strings.Contains(errs, "exists") || !strings.Contains(errs, "--force") || !strings.Contains(errs, "restart ferry serve") {
		t.Fatalf("credential over an existing file: exit %d, %s", code, errs)
	}
	if b, _ := os.ReadFile(out); string(b) != "old\n" {
		t.Errorf("the existing credential was changed: %q", b)
	}
}

// TestAgentEnrollUsesConfigCA: agent enroll --config, without --ca, on a
// server with ferry's own CA (--self-signed) takes the CA of the config's
// application on that server, as the agent does when it updates.
func TestAgentEnrollUsesConfigCA(t *testing.T) {
	d := t.TempDir()
	repoDir, off := filepath.Join(d, "repo"), filepath.Join(d, "offline")
	c := &cli{t: t, env: map[string]string{envPassphrase: "pass", envInsecureWorkFactor: "8"}}
	c.ok("init", repoDir, "--offline-keys", off)
	app := filepath.Join(d, "hello")
	os.WriteFile(app, []byte("hello 1.0.0\n"), 0o644)
	c.ok("release", "publish", "--repo", repoDir, "--offline-keys", off, "--app", "hello", "--version", "1.0.0", "--platform", "linux/amd64", app)
	tok := filepath.Join(d, "enroll.token")
	os.WriteFile(tok, []byte(strings.TrimSpace(c.ok("token", "create", "--repo", repoDir, "--enroll", "--app", "hello"))+"\n"), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	urlFile, ca := filepath.Join(d, "url"), filepath.Join(d, "ca.pem")
	go func() {
		defer close(done)
		c.run(ctx, "serve", "--repo", repoDir, "--addr", "127.0.0.1:0", "--self-signed", ca, "--addr-file", urlFile)
	}()
	defer func() { cancel(); <-done }()
	url := waitFile(t, urlFile, done)
	state := filepath.Join(d, "state")
	os.Mkdir(state, 0o700)
	conf := filepath.Join(d, "agent.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("state_dir = %q\n\n[[app]]\nname = \"hello\"\nurls = [%q]\ntrusted_root = %q\nca = %q\nplatform = \"linux/amd64\"\n[app.install]\nstrategy = \"binary\"\ntarget = %q\n",
		state, url, filepath.Join(repoDir, "root.json"), ca, filepath.Join(d, "bin", "hello"))), 0o600)
	code, out, errs := c.run(context.Background(), "agent", "enroll", "--server", url, "--token-file", tok, "--config", conf)
	if code != 0 || !strings.Contains(out, "enrolled installation") {
		t.Fatalf("agent enroll --config without --ca on a --self-signed server: exit %d\n%s%s", code, out, errs)
	}
}
