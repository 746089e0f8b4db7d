package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/trust"
)

// TestWrongSoftware_R19: the server swaps the artifact for other bytes of
// the same length; the download fails with a hash mismatch and nothing
// reaches the destination or stays in the cache.
func TestWrongSoftware_R19(t *testing.T) {
	f := newFixture(t)
	good := []byte("hello 1.0.0 genuine\n")
	p := f.publish("hello", "1.0.0", "linux/amd64", "hello", good)
	evil := bytes.Repeat([]byte("X"), len(good))
	if err := os.WriteFile(f.targetFile(p, good), evil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t)
	var ev events
	cfg.Log = ev.logger()
	c := newClient(t, cfg)
	rel, err := c.Check(context.Background())
	if err != nil || rel == nil {
		t.Fatalf("Check = %v, %v", rel, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err = c.Download(context.Background(), rel, out)
	if !errors.Is(err, fetch.ErrMismatch) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("Download of swapped bytes: err = %v, want a sha256 mismatch", err)
	}
	t.Log(err)
	if n := ev.count(t, "download.rejected"); n != 1 {
		t.Errorf("%d download.rejected events, want 1:\n%s", n, ev.buf.String())
	}
	mustEmpty(t, out)
	mustEmpty(t, filepath.Join(cfg.StateDir, "downloads"))
}

// TestPoisonedCache_R20: whatever is in the download cache is verified
// before use; a bad file is replaced by a fresh, verified download.
func TestPoisonedCache_R20(t *testing.T) {
	f := newFixture(t)
	good := []byte("hello 1.0.0 genuine contents\n")
	p := f.publish("hello", "1.0.0", "linux/amd64", "hello", good)
	sum := sha256.Sum256(good)
	tests := []struct {
		name   string
		poison func(t *testing.T, path string)
	}{
		{"complete garbage", func(t *testing.T, path string) { write(t, path, bytes.Repeat([]byte("X"), len(good))) }},
		{"garbage prefix", func(t *testing.T, path string) { write(t, path, []byte("EVIL")) }},
		{"too long", func(t *testing.T, path string) { write(t, path, append(append([]byte{}, good...), "tail"...)) }},
		{"directory", func(t *testing.T, path string) {
			if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "good")
			write(t, other, good)
			if err := os.Symlink(other, path); err != nil {
				t.Skip(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config(t)
			var ev events
			cfg.Log = ev.logger()
			c := newClient(t, cfg)
			tt.poison(t, filepath.Join(cfg.StateDir, "downloads", hex.EncodeToString(sum[:])))
			got, err := c.Download(context.Background(), &client.Release{Path: p}, t.TempDir())
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			mustFile(t, got, good)
			if n := ev.count(t, "download.cache_rejected"); n != 1 {
				t.Errorf("%d download.cache_rejected events, want 1:\n%s", n, ev.buf.String())
			}
		})
	}
}

// TestVerifiedCacheReused_R20: a complete, verified file in the cache is
// used without downloading (the server now serves garbage).
func TestVerifiedCacheReused_R20(t *testing.T) {
	f := newFixture(t)
	good := []byte("hello 1.0.0 genuine contents\n")
	p := f.publish("hello", "1.0.0", "linux/amd64", "hello", good)
	write(t, f.targetFile(p, good), []byte("garbage"))
	cfg := f.config(t)
	c := newClient(t, cfg)
	sum := sha256.Sum256(good)
	write(t, filepath.Join(cfg.StateDir, "downloads", hex.EncodeToString(sum[:])), good)
	got, err := c.Download(context.Background(), &client.Release{Path: p}, t.TempDir())
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	mustFile(t, got, good)
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBadMirror_R28: the first mirror fails in some way, the second is
// good: Check and Download succeed with the same checks.
func TestBadMirror_R28(t *testing.T) {
	f := newFixture(t)
	good := []byte("hello 1.0.0\n")
	f.publish("hello", "1.0.0", "linux/amd64", "hello", good)
	attacker := newFixture(t)
	attacker.publish("hello", "6.6.6", "linux/amd64", "hello", []byte("evil"))
	public, err := server.Repository(filepath.Join(f.dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	status := func(code int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", code) })
	}
	tests := []struct {
		name string
		h    http.Handler
	}{
		{"404", status(http.StatusNotFound)},
		{"403", status(http.StatusForbidden)},
		{"500", status(http.StatusInternalServerError)},
		{"garbage", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("garbage{"), 100))
		})},
		{"attacker-signed metadata", attacker.srv.Config.Handler},
		{"targets missing", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/targets/") {
				http.NotFound(w, r)
				return
			}
			public.ServeHTTP(w, r)
		})},
		{"targets swapped", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/targets/") {
				w.Write(bytes.Repeat([]byte("X"), len(good)))
				return
			}
			public.ServeHTTP(w, r)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := serveTLS(t, tt.h)
			c := f.client(t, func(cfg *client.Config) { cfg.URLs = []string{bad.URL, f.srv.URL} })
			rel, err := c.Check(context.Background())
			if err != nil || rel == nil || rel.Version != "1.0.0" {
				t.Fatalf("Check = %v, %v; want 1.0.0 from the good mirror", rel, err)
			}
			got, err := c.Download(context.Background(), rel, t.TempDir())
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			mustFile(t, got, good)

			only := f.client(t, func(cfg *client.Config) { cfg.URLs = []string{bad.URL} })
			out := t.TempDir()
			_, err = only.Download(context.Background(), rel, out)
			if err == nil {
				t.Fatal("Download from the bad mirror alone succeeded")
			}
			t.Log(err)
			mustEmpty(t, out)
		})
	}
}

// TestAllMirrorsFail_R28: every mirror's failure is reported.
func TestAllMirrorsFail_R28(t *testing.T) {
	f := newFixture(t)
	bad1 := serveTLS(t, http.NotFoundHandler())
	bad2 := serveTLS(t, http.NotFoundHandler())
	c := f.client(t, func(cfg *client.Config) { cfg.URLs = []string{bad1.URL, bad2.URL} })
	rel, err := c.Check(context.Background())
	if err == nil || rel != nil {
		t.Fatalf("Check = %v, %v; want an error", rel, err)
	}
	var me *client.MirrorError
	if !errors.As(err, &me) || me.URL != bad1.URL+"/" {
		t.Errorf("error %v: want a MirrorError for %s", err, bad1.URL)
	}
	for _, u := range []string{bad1.URL, bad2.URL} {
		if !strings.Contains(err.Error(), u) {
			t.Errorf("error %q does not name mirror %s", err, u)
		}
	}
}

// TestCompromisedServer_R31: a server with a valid TLS certificate serves
// metadata and a binary signed with the attacker's keys: refused, nothing
// downloaded.
func TestCompromisedServer_R31(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("genuine"))
	attacker := newFixture(t)
	evilPath := attacker.publish("hello", "6.6.6", "linux/amd64", "hello", []byte("evil"))

	t.Run("attacker repository", func(t *testing.T) {
		cfg := f.config(t)
		cfg.URLs = []string{attacker.srv.URL}
		var ev events
		cfg.Log = ev.logger()
		c := newClient(t, cfg)
		rel, err := c.Check(context.Background())
		if !errors.Is(err, trust.ErrBadSignature) {
			t.Fatalf("Check against attacker metadata = %v, %v; want ErrBadSignature", rel, err)
		}
		t.Log(err)
		if n := ev.count(t, "metadata.rejected"); n != 1 {
			t.Errorf("%d metadata.rejected events, want 1:\n%s", n, ev.buf.String())
		}
		out := t.TempDir()
		if _, err := c.Download(context.Background(), &client.Release{Path: evilPath}, out); err == nil {
			t.Fatal("Download of attacker's binary succeeded")
		}
		mustEmpty(t, out)
		mustEmpty(t, filepath.Join(cfg.StateDir, "downloads"))
	})
	t.Run("timestamp replaced after a good refresh", func(t *testing.T) {
		c := f.client(t, nil)
		if _, err := c.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		ts, err := os.ReadFile(filepath.Join(attacker.dir, "public", "metadata", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(f.dir, "public", "metadata", "timestamp.json"), ts)
		if rel, err := c.Check(context.Background()); !errors.Is(err, trust.ErrBadSignature) {
			t.Fatalf("Check with attacker's timestamp = %v, %v; want ErrBadSignature", rel, err)
		}
	})
}

// TestNoTrustRoot_R38: a missing trust root, or any other missing or bad
// configuration, is an error from New, never a client that skips checks.
func TestNoTrustRoot_R38(t *testing.T) {
	f := newFixture(t)
	emptyFile := filepath.Join(t.TempDir(), "empty.json")
	write(t, emptyFile, nil)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	write(t, rootFile, f.root)
	tests := []struct {
		name string
		edit func(*client.Config)
	}{
		{"zero config", func(c *client.Config) { *c = client.Config{} }},
		{"no root", func(c *client.Config) { c.TrustedRoot = nil }},
		{"empty root", func(c *client.Config) { c.TrustedRoot = []byte{} }},
		{"garbage root", func(c *client.Config) { c.TrustedRoot = []byte(`{"signed":{}}`) }},
		{"missing root file", func(c *client.Config) {
			c.TrustedRoot, c.TrustedRootFile = nil, filepath.Join(t.TempDir(), "nope.json")
		}},
		{"empty root file", func(c *client.Config) { c.TrustedRoot, c.TrustedRootFile = nil, emptyFile }},
		{"root and root file", func(c *client.Config) { c.TrustedRootFile = rootFile }},
		{"no URLs", func(c *client.Config) { c.URLs = nil }},
		{"http URL", func(c *client.Config) { c.URLs = []string{"http://updates.invalid/"} }},
		{"http loopback without Insecure option", func(c *client.Config) { c.URLs = []string{"http://127.0.0.1:1/"} }},
		{"file URL", func(c *client.Config) { c.URLs = []string{"file:///etc/"} }},
		{"no state dir", func(c *client.Config) { c.StateDir = "" }},
		{"no app", func(c *client.Config) { c.App = "" }},
		{"bad app", func(c *client.Config) { c.App = "../hello" }},
		{"bad platform", func(c *client.Config) { c.Platform = "linux" }},
		{"bad installed version", func(c *client.Config) { c.Installed = "one" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config(t)
			tt.edit(&cfg)
			if c, err := client.New(cfg); err == nil {
				t.Fatalf("New succeeded: %v", c)
			}
		})
	}
	t.Run("root file works", func(t *testing.T) {
		cfg := f.config(t)
		cfg.TrustedRoot, cfg.TrustedRootFile = nil, rootFile
		newClient(t, cfg)
	})
}

// TestTamperedRelease_R29: Download reads only the Path of the Release it is
// given and resolves it through trusted metadata again.
func TestTamperedRelease_R29(t *testing.T) {
	f := newFixture(t)
	good := []byte("hello 1.0.0\n")
	p := f.publish("hello", "1.0.0", "linux/amd64", "hello", good)
	other := f.publish("other", "2.0.0", "linux/amd64", "other", []byte("other app"))
	mac := f.publish("hello", "1.1.0", "darwin/arm64", "hello", []byte("mac"))
	c := f.client(t, nil)
	rel, err := c.Check(context.Background())
	if err != nil || rel == nil {
		t.Fatalf("Check = %v, %v", rel, err)
	}
	for _, bad := range []string{other, mac, "hello/1.0.0/linux-amd64/../../../other/2.0.0/linux-amd64/other"} {
		out := t.TempDir()
		tampered := *rel
		tampered.Path = bad
		if _, err := c.Download(context.Background(), &tampered, out); err == nil {
			t.Errorf("Download of tampered path %s succeeded", bad)
		}
		mustEmpty(t, out)
	}

	// Length and hashes changed by the caller to an attacker's file that
	// also sits on the server under the name they would give.
	evil := bytes.Repeat([]byte("E"), 50)
	sum := sha256.Sum256(evil)
	write(t, filepath.Join(filepath.Dir(f.targetFile(p, good)), hex.EncodeToString(sum[:])+".hello"), evil)
	tampered := *rel
	tampered.Length, tampered.Hashes = int64(len(evil)), map[string][]byte{"sha256": sum[:]}
	got, err := c.Download(context.Background(), &tampered, t.TempDir())
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	mustFile(t, got, good)
}

// TestExtraneousTarget_R23: a file on the server that no signed metadata
// lists is never downloaded.
func TestExtraneousTarget_R23(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	evil := []byte("unlisted")
	p := "hello/9.9.9/linux-amd64/hello"
	dst := f.targetFile(p, evil)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dst, evil)
	c := f.client(t, nil)
	rel, err := c.Check(context.Background())
	if err != nil || rel == nil || rel.Version != "1.0.0" {
		t.Fatalf("Check = %v, %v; want 1.0.0", rel, err)
	}
	out := t.TempDir()
	sum := sha256.Sum256(evil)
	_, err = c.Download(context.Background(), &client.Release{Path: p, Length: int64(len(evil)),
		Hashes: map[string][]byte{"sha256": sum[:]}}, out)
	if !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("Download of unlisted target: err = %v, want trust.ErrNotFound", err)
	}
	mustEmpty(t, out)
}

// TestMixAndMatch_R12: the server serves an old snapshot under the name
// the new timestamp points to.
func TestMixAndMatch_R12(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	c := f.client(t, nil)
	if _, err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.publish("hello", "1.1.0", "linux/amd64", "hello", []byte("v1.1"))
	snaps := versioned(t, f, "snapshot")
	if len(snaps) < 2 {
		t.Fatalf("want at least 2 snapshots, have %v", snaps)
	}
	old, err := os.ReadFile(snaps[len(snaps)-2])
	if err != nil {
		t.Fatal(err)
	}
	write(t, snaps[len(snaps)-1], old)
	rel, err := c.Check(context.Background())
	if !errors.Is(err, trust.ErrMismatch) {
		t.Fatalf("Check with mixed snapshot = %v, %v; want trust.ErrMismatch", rel, err)
	}
	t.Log(err)
}

// TestTamperedMetadata_R1: a flipped byte in a signature is refused: in
// timestamp.json as a bad signature, in the application's role already by
// the hash that the snapshot lists for it.
func TestTamperedMetadata_R1(t *testing.T) {
	tests := []struct {
		name string
		file func(f *fixture) string
		want error
	}{
		{"timestamp", func(f *fixture) string { return filepath.Join(f.dir, "public", "metadata", "timestamp.json") }, trust.ErrBadSignature},
		{"app role", func(f *fixture) string { r := versioned(t, f, "hello"); return r[len(r)-1] }, trust.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
			flipSig(t, tt.file(f))
			c := f.client(t, nil)
			rel, err := c.Check(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check with a flipped signature byte = %v, %v; want %v", rel, err, tt.want)
			}
			t.Log(err)
		})
	}
}

// flipSig changes the first hex digit of the first signature in a
// metadata file.
func flipSig(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"sig"`))
	if i < 0 {
		t.Fatalf("%s: no signature", path)
	}
	i += bytes.IndexByte(b[i+len(`"sig"`):], '"') + len(`"sig"`) + 1
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	write(t, path, b)
}

// versioned lists public/metadata/N.ROLE.json files by increasing N.
func versioned(t *testing.T, f *fixture, role string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(f.dir, "public", "metadata", "*."+role+".json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s metadata: %v", role, err)
	}
	num := func(p string) int {
		n, _ := strconv.Atoi(strings.SplitN(filepath.Base(p), ".", 2)[0])
		return n
	}
	sort.Slice(files, func(i, j int) bool { return num(files[i]) < num(files[j]) })
	return files
}

// TestResumeDownload_R34: a partial file left in the download cache is
// resumed with a Range request, and the whole file is verified.
func TestResumeDownload_R34(t *testing.T) {
	f := newFixture(t)
	good := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	p := f.publish("hello", "1.0.0", "linux/amd64", "hello", good)
	public, err := server.Repository(filepath.Join(f.dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	var ranges []string
	srv := serveTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/targets/") {
			ranges = append(ranges, r.Header.Get("Range"))
		}
		public.ServeHTTP(w, r)
	}))
	cfg := f.config(t)
	cfg.URLs = []string{srv.URL}
	c := newClient(t, cfg)
	sum := sha256.Sum256(good)
	write(t, filepath.Join(cfg.StateDir, "downloads", hex.EncodeToString(sum[:])), good[:len(good)/2])
	got, err := c.Download(context.Background(), &client.Release{Path: p}, t.TempDir())
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	mustFile(t, got, good)
	if want := "bytes=" + strconv.Itoa(len(good)/2) + "-"; len(ranges) != 1 || ranges[0] != want {
		t.Errorf("target requests with Range %q, want one with %q", ranges, want)
	}
}

// TestFreeze_R13: with the clock past the metadata's expiry, Check fails
// as a potential freeze attack.
func TestFreeze_R13(t *testing.T) {
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", []byte("v1"))
	c := f.client(t, func(cfg *client.Config) {
		cfg.Now = func() time.Time { return time.Now().Add(400 * 24 * time.Hour) }
	})
	rel, err := c.Check(context.Background())
	if !errors.Is(err, trust.ErrExpired) {
		t.Fatalf("Check in the future = %v, %v; want trust.ErrExpired", rel, err)
	}
	t.Log(err)
}
