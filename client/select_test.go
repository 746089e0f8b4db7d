package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/rollout"
)

// target builds a signed-target description as trust would return it.
func target(path, customJSON string) *metadata.TargetFiles {
	sum := sha256.Sum256([]byte(path))
	raw := json.RawMessage(customJSON)
	tf := &metadata.TargetFiles{Length: 10, Hashes: metadata.Hashes{"sha256": sum[:]}, Path: path}
	if customJSON != "" {
		tf.Custom = &raw
	}
	return tf
}

func ferryCustom(app, version, platform, kind string) string {
	return fmt.Sprintf(`{"ferry":{"app":%q,"version":%q,"platform":%q,"kind":%q}}`, app, version, platform, kind)
}

// good is a valid release of hello for linux/amd64.
func good(version, file string) (string, *metadata.TargetFiles) {
	p := "hello/" + version + "/linux-amd64/" + file
	return p, target(p, ferryCustom("hello", version, "linux/amd64", "binary"))
}

func TestPolicyRelease_R49(t *testing.T) {
	p := policy{app: "hello", platform: "linux/amd64"}
	tests := []struct {
		name, path, custom string
		edit               func(*metadata.TargetFiles)
		wantErr            string // "" for a release
	}{
		{"valid", "hello/1.0.0/linux-amd64/hello", ferryCustom("hello", "1.0.0", "linux/amd64", "binary"), nil, ""},
		{"archive", "hello/1.0.0/linux-amd64/hello.tar.gz", ferryCustom("hello", "1.0.0", "linux/amd64", "tar.gz"), nil, ""},
		{"other app", "other/1.0.0/linux-amd64/hello", ferryCustom("other", "1.0.0", "linux/amd64", "binary"), nil, "app"},
		{"other platform", "hello/1.0.0/darwin-arm64/hello", ferryCustom("hello", "1.0.0", "darwin/arm64", "binary"), nil, "platform"},
		{"custom says other platform", "hello/1.0.0/linux-amd64/hello", ferryCustom("hello", "1.0.0", "darwin/arm64", "binary"), nil, "disagrees"},
		{"custom says other version", "hello/1.0.0/linux-amd64/hello", ferryCustom("hello", "9.0.0", "linux/amd64", "binary"), nil, "disagrees"},
		{"custom says other app", "hello/1.0.0/linux-amd64/hello", ferryCustom("evil", "1.0.0", "linux/amd64", "binary"), nil, "disagrees"},
		{"unknown kind", "hello/1.0.0/linux-amd64/hello", ferryCustom("hello", "1.0.0", "linux/amd64", "exe"), nil, "unknown kind"},
		{"no custom", "hello/1.0.0/linux-amd64/hello", "", nil, "no signed ferry metadata"},
		{"custom without ferry", "hello/1.0.0/linux-amd64/hello", `{"other":1}`, nil, "bad signed"},
		{"custom wrong types", "hello/1.0.0/linux-amd64/hello", `{"ferry":{"app":1}}`, nil, "bad signed"},
		{"short path", "hello/1.0.0/hello", ferryCustom("hello", "1.0.0", "linux/amd64", "binary"), nil, "APP/VERSION"},
		{"deep path", "hello/1.0.0/linux-amd64/x/hello", ferryCustom("hello", "1.0.0", "linux/amd64", "binary"), nil, "APP/VERSION"},
		{"bad semver", "hello/1.0/linux-amd64/hello", ferryCustom("hello", "1.0", "linux/amd64", "binary"), nil, "semver"},
		{"v prefix", "hello/v1.0.0/linux-amd64/hello", ferryCustom("hello", "v1.0.0", "linux/amd64", "binary"), nil, "leading v"},
		{"build metadata", "hello/1.1.0+rebuild/linux-amd64/hello", ferryCustom("hello", "1.1.0+rebuild", "linux/amd64", "binary"), nil, "+build"},
		{"custom build metadata", "hello/1.1.0/linux-amd64/hello", ferryCustom("hello", "1.1.0+rebuild", "linux/amd64", "binary"), nil, "+build"},
		{"dot-dot file", "hello/1.0.0/linux-amd64/..", ferryCustom("hello", "1.0.0", "linux/amd64", "binary"), nil, "unsafe"},
		{"backslash file", `hello/1.0.0/linux-amd64/..\x`, ferryCustom("hello", "1.0.0", "linux/amd64", "binary"), nil, "unsafe"},
		{"no sha256", "hello/1.0.0/linux-amd64/hello", ferryCustom("hello", "1.0.0", "linux/amd64", "binary"),
			func(tf *metadata.TargetFiles) { tf.Hashes = metadata.Hashes{"sha512": make([]byte, 64)} }, "sha256"},
		{"zero length", "hello/1.0.0/linux-amd64/hello", ferryCustom("hello", "1.0.0", "linux/amd64", "binary"),
			func(tf *metadata.TargetFiles) { tf.Length = 0 }, "length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := target(tt.path, tt.custom)
			if tt.edit != nil {
				tt.edit(tf)
			}
			rel, err := p.release(tt.path, tf)
			if tt.wantErr == "" {
				if err != nil || rel.Path != tt.path || rel.Length != 10 || !bytes.Equal(rel.Hashes["sha256"], tf.Hashes["sha256"]) {
					t.Fatalf("release = %v, %v", rel, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("release = %v, %v; want error containing %q", rel, err, tt.wantErr)
			}
		})
	}
}

func TestPick(t *testing.T) {
	targets := map[string]*metadata.TargetFiles{}
	add := func(version, file string) {
		p, tf := good(version, file)
		targets[p] = tf
	}
	add("1.0.0", "hello")
	add("1.2.0", "hello.zip")
	add("1.2.0", "hello")
	add("1.10.0", "zz")
	add("1.10.0", "aa")
	add("2.0.0-rc.1", "hello")
	p := "hello/9.0.0/linux-amd64/hello"
	targets[p] = target(p, ferryCustom("hello", "9.0.0", "darwin/arm64", "binary")) // lies about its platform
	p = "hello/8.0.0/darwin-arm64/hello"
	targets[p] = target(p, ferryCustom("hello", "8.0.0", "darwin/arm64", "binary"))

	tests := []struct {
		installed  string
		prerelease bool
		want       string
	}{
		{"", false, "hello/1.10.0/linux-amd64/aa"},
		{"1.2.0", false, "hello/1.10.0/linux-amd64/aa"},
		{"1.10.0", false, ""},
		{"1.10.0", true, "hello/2.0.0-rc.1/linux-amd64/hello"},
		{"2.0.0-rc.1", true, ""},
		{"7.0.0", true, ""},
	}
	for _, tt := range tests {
		p := policy{app: "hello", platform: "linux/amd64", installed: tt.installed, prerelease: tt.prerelease}
		got := pick(p.sel(targets).rels, p)
		switch {
		case tt.want == "" && got != nil:
			t.Errorf("installed %q: pick = %v, want none", tt.installed, got)
		case tt.want != "" && (got == nil || got.Path != tt.want):
			t.Errorf("installed %q: pick = %v, want %s", tt.installed, got, tt.want)
		}
	}
	// Same version, several files: the first by name, every time.
	delete(targets, "hello/1.10.0/linux-amd64/aa")
	delete(targets, "hello/1.10.0/linux-amd64/zz")
	for range 20 {
		p := policy{app: "hello", platform: "linux/amd64"}
		if got := pick(p.sel(targets).rels, p); got == nil || got.Path != "hello/1.2.0/linux-amd64/hello" {
			t.Fatalf("pick = %v, want hello/1.2.0/linux-amd64/hello", got)
		}
	}
}

// pick is the release p's installation gets among rels when the
// repository has no rollout decisions: the first file of the chosen version.
func pick(rels []*Release, p policy) *Release {
	ch := p.choose(rels, rollout.Input{})
	if ch.Version == "" {
		return nil
	}
	return releaseFiles(rels, ch.Version)[0]
}

func TestTargetURL(t *testing.T) {
	m := &mirror{base: "https://updates.example/repo/"}
	sum := sha256.Sum256([]byte("x"))
	got, err := m.targetURL("hello/1.0.0+build.1/linux-amd64/hello world", sum[:])
	want := fmt.Sprintf("https://updates.example/repo/targets/hello/1.0.0+build.1/linux-amd64/%x.hello%%20world", sum)
	if err != nil || got != want {
		t.Errorf("targetURL = %s, %v; want %s", got, err, want)
	}
}

// TestMetadataNameRefused_R29: a hostile role name from metadata never
// leaves the mirror's metadata base (refused before any request).
func TestMetadataNameRefused_R29(t *testing.T) {
	m := &mirror{base: "https://updates.example/repo/"} // no fetcher: must not get that far
	for _, name := range []string{"../../keys/root.age", "..", "", "a//b", "x\x00.json"} {
		if _, err := m.FetchMetadata(context.Background(), name, 100); err == nil {
			t.Errorf("FetchMetadata(%q) succeeded", name)
		}
	}
}
