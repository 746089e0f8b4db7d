package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/client"
)

// TestEndToEnd publishes with package repo, serves with package server over
// TLS, and checks, downloads and verifies with the client.
func TestEndToEnd(t *testing.T) {
	f := newFixture(t)
	v1 := []byte("hello 1.0.0\n")
	v2 := []byte("hello 1.1.0\n")
	f.publish("hello", "1.0.0", "linux/amd64", "hello", v1)
	p2 := f.publish("hello", "1.1.0", "linux/amd64", "hello", v2)
	f.publish("hello", "2.0.0", "darwin/arm64", "hello", []byte("hello 2.0.0 for macOS\n"))
	f.publish("other", "9.0.0", "linux/amd64", "other", []byte("another app\n"))

	ctx := context.Background()
	var progressed int64
	cfg := f.config(t)
	cfg.Installed = "1.0.0"
	cfg.Progress = func(done, total int64) { progressed = done }
	c := newClient(t, cfg)
	rel, err := c.Check(ctx)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if rel == nil || rel.Path != p2 || rel.Version != "1.1.0" || rel.Platform != "linux/amd64" ||
		rel.App != "hello" || rel.Kind != "binary" || rel.Length != int64(len(v2)) || len(rel.Hashes["sha256"]) != 32 {
		t.Fatalf("Check = %v, want hello 1.1.0 linux/amd64 at %s", rel, p2)
	}
	out := filepath.Join(t.TempDir(), "out")
	got, err := c.Download(ctx, rel, out)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if got != filepath.Join(out, "hello") {
		t.Errorf("Download path = %s, want %s", got, filepath.Join(out, "hello"))
	}
	mustFile(t, got, v2)
	if fi, err := os.Stat(got); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("downloaded binary mode: %v %v, want 0755", fi.Mode(), err)
	}
	if progressed != int64(len(v2)) {
		t.Errorf("progress reported %d bytes, want %d", progressed, len(v2))
	}
	mustEmpty(t, filepath.Join(cfg.StateDir, "downloads"))
}

func TestCheckVersions(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	f.publish("hello", "1.2.0", "linux/amd64", "hello", []byte("v1.2"))
	f.publish("hello", "1.10.0-rc.1", "linux/amd64", "hello", []byte("rc"))
	f.publish("hello", "1.3.0", "windows/amd64", "hello.exe", []byte("windows"))
	tests := []struct {
		name       string
		installed  string
		platform   string
		prerelease bool
		want       string // version, "" for none
	}{
		{"none installed", "", "linux/amd64", false, "1.2.0"},
		{"older installed", "1.0.0", "linux/amd64", false, "1.2.0"},
		{"at newest", "1.2.0", "linux/amd64", false, ""},
		{"newer installed: never a downgrade", "3.0.0", "linux/amd64", false, ""},
		{"pre-release opted in", "1.2.0", "linux/amd64", true, "1.10.0-rc.1"},
		{"other platform", "1.0.0", "windows/amd64", false, "1.3.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t, func(cfg *client.Config) {
				cfg.Installed, cfg.Platform, cfg.Prerelease = tt.installed, tt.platform, tt.prerelease
			})
			rel, err := c.Check(context.Background())
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			switch {
			case tt.want == "" && rel != nil:
				t.Fatalf("Check = %v, want none", rel)
			case tt.want != "" && (rel == nil || rel.Version != tt.want || rel.Platform != tt.platform):
				t.Fatalf("Check = %v, want %s for %s", rel, tt.want, tt.platform)
			}
		})
	}
}

// TestCheckSeesNewRelease refreshes twice with one client: the second Check
// sees a release published in between.
func TestCheckSeesNewRelease(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	c := f.client(t, nil)
	ctx := context.Background()
	if rel, err := c.Check(ctx); err != nil || rel == nil || rel.Version != "1.0.0" {
		t.Fatalf("first Check = %v, %v; want 1.0.0", rel, err)
	}
	f.publish("hello", "1.0.1", "linux/amd64", "hello", []byte("v1.0.1"))
	rel, err := c.Check(ctx)
	if err != nil || rel == nil || rel.Version != "1.0.1" {
		t.Fatalf("second Check = %v, %v; want 1.0.1", rel, err)
	}
	out := t.TempDir()
	p, err := c.Download(ctx, rel, out)
	if err != nil {
		t.Fatal(err)
	}
	mustFile(t, p, []byte("v1.0.1"))
}

// TestDownloadWithoutCheck downloads with a new client (metadata persisted
// by another one), which must refresh before it resolves the path.
func TestDownloadWithoutCheck(t *testing.T) {
	f := newFixture(t)
	p := f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	c := f.client(t, nil)
	got, err := c.Download(context.Background(), &client.Release{Path: p}, t.TempDir())
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	mustFile(t, got, []byte("v1"))
}

// TestDownloadRefusesDowngrade_R49: a signed older release named by the
// caller is refused, as is the installed version itself.
func TestDownloadRefusesDowngrade_R49(t *testing.T) {
	f := newFixture(t)
	old := f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	cur := f.publish("hello", "1.1.0", "linux/amd64", "hello", []byte("v1.1"))
	c := f.client(t, func(cfg *client.Config) { cfg.Installed = "1.1.0" })
	for _, p := range []string{old, cur} {
		out := t.TempDir()
		_, err := c.Download(context.Background(), &client.Release{Path: p}, out)
		if !errors.Is(err, client.ErrRefused) {
			t.Errorf("Download %s: err = %v, want ErrRefused", p, err)
		}
		mustEmpty(t, out)
	}
}

// TestNotPublished: an application the repository has never published
// (a typo), or a platform it has no release for, is an error naming what
// the repository has, from Check, Update and SelfUpdate alike; "nothing
// newer" (nil) is only for an application and platform that exist.
func TestNotPublished(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	f.publish("hello", "1.0.0", "windows/amd64", "hello.exe", []byte("v1"))
	f.publish("world", "0.1.0", "linux/amd64", "world", []byte("w"))
	empty := newFixture(t) // nothing published at all
	tests := []struct {
		name          string
		f             *fixture
		app, platform string
		kind          error
		known         []string
		msg           string
	}{
		{"typo", f, "helo", "linux/amd64", client.ErrUnknownApp, []string{"hello", "world"},
			`unknown application "helo": the repository has hello, world`},
		{"empty repository", empty, "hello", "linux/amd64", client.ErrUnknownApp, nil,
			`unknown application "hello": the repository has no applications`},
		{"platform never published", f, "hello", "linux/arm64", client.ErrUnknownPlatform, []string{"linux/amd64", "windows/amd64"},
			"hello has no release for linux/arm64, only for linux/amd64, windows/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.f.config(t)
			cfg.App, cfg.Platform, cfg.Installed = tt.app, tt.platform, "1.0.0"
			check := func(what string, err error) {
				t.Helper()
				var np *client.NotPublishedError
				if !errors.Is(err, tt.kind) || !errors.As(err, &np) || fmt.Sprint(np.Known) != fmt.Sprint(tt.known) ||
					!strings.Contains(err.Error(), tt.msg) {
					t.Errorf("%s: %v; want %v naming %v (%q)", what, err, tt.kind, tt.known, tt.msg)
				}
			}
			rel, err := newClient(t, cfg).Check(context.Background())
			check("Check", err)
			if rel != nil {
				t.Errorf("Check offered %v", rel)
			}
			rec := &recorder{}
			_, err = newClient(t, cfg).Update(context.Background(), rec)
			check("Update", err)
			if len(rec.applied) != 0 {
				t.Errorf("Update applied %d artifacts", len(rec.applied))
			}
			_, err = client.SelfUpdate(context.Background(), cfg, client.SelfUpdateOptions{
				Reexec: func(string) error { t.Error("SelfUpdate re-executed"); return nil }})
			check("SelfUpdate", err)
		})
	}
	// Up to date is nil only where the application and platform exist.
	cfg := f.config(t)
	cfg.Installed = "1.0.0"
	if rel, err := newClient(t, cfg).Check(context.Background()); err != nil || rel != nil {
		t.Fatalf("up to date: Check = %v, %v; want nil, nil", rel, err)
	}
}
