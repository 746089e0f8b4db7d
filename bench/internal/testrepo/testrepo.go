// Package testrepo generates signed TUF repositories of any size for
// ferry's benchmarks, with go-tuf's metadata types:
//
//   - Delegated: ferry's layout. Top-level targets signs no files and
//     delegates each application to its own role named APP (own Ed25519 key,
//     threshold 1, terminating, path pattern "APP/*/*/*").
//   - Flat: the same targets listed in one top-level targets.json, the
//     layout most go-tuf users publish.
//
// Both use consistent snapshots and write metadata the way a ferry
// repository serves it: DIR/metadata/N.ROLE.json and DIR/metadata/timestamp.json.
// Snapshot entries carry versions only (no lengths or hashes), as
// metadata.MetaFile(version) makes them. Target files themselves are not
// written: target entries describe synthetic content (the length and
// SHA-256 are derived from the path), enough to refresh and look up.
//
// The generated keys live only in memory and are thrown away.
package testrepo

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Spec describes the targets of a generated repository.
type Spec struct {
	Targets int       // total number of targets (at least 1)
	PerApp  int       // targets per application; 0 means 100
	Expires time.Time // expiry of every role; zero means one year from now
}

// platforms are the OS-ARCH segments used for every version.
var platforms = []string{"linux-amd64", "linux-arm64", "darwin-arm64", "windows-amd64"}

// Target is one generated target entry.
type Target struct {
	Path string
	File *metadata.TargetFiles
}

// List returns the spec's targets in order, grouped by application:
// app number a has targets APPNAME/1.0.V/OS-ARCH/APPNAME (APPNAME
// "appNNNNN"), one per platform per version.
func (s Spec) List() []Target {
	per := s.perApp()
	out := make([]Target, 0, s.Targets)
	for i := range s.Targets {
		app := AppName(i / per)
		j := i % per
		version := fmt.Sprintf("1.0.%d", j/len(platforms))
		plat := platforms[j%len(platforms)]
		p := app + "/" + version + "/" + plat + "/" + app
		out = append(out, Target{Path: p, File: targetFile(p, app, version, plat)})
	}
	return out
}

// Apps returns the number of applications.
func (s Spec) Apps() int { return (s.Targets + s.perApp() - 1) / s.perApp() }

// Lookup returns the target path that benchmarks look up: the last
// platform of the last version of the middle application.
func (s Spec) Lookup() (app, path string) {
	ts := s.List()
	mid := s.Apps() / 2
	last := min((mid+1)*s.perApp(), len(ts)) - 1
	return AppName(mid), ts[last].Path
}

func (s Spec) perApp() int {
	if s.PerApp > 0 {
		return s.PerApp
	}
	return 100
}

func (s Spec) expires() time.Time {
	if s.Expires.IsZero() {
		return time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second)
	}
	return s.Expires
}

// AppName is the name of application number i.
func AppName(i int) string { return fmt.Sprintf("app%05d", i) }

// targetFile describes synthetic content for path p with ferry's custom
// fields.
func targetFile(p, app, version, plat string) *metadata.TargetFiles {
	sum := sha256.Sum256([]byte(p))
	custom := json.RawMessage(fmt.Sprintf(`{"app":%q,"version":%q,"platform":%q,"kind":"binary"}`,
		app, version, strings.Replace(plat, "-", "/", 1)))
	tf := metadata.TargetFile()
	tf.Path = p
	tf.Length = 1<<20 + int64(sum[0])<<8 + int64(sum[1])
	tf.Hashes = metadata.Hashes{"sha256": sum[:]}
	tf.Custom = &custom
	return tf
}

// key is one in-memory signing key.
type key struct {
	pub    *metadata.Key
	signer signature.Signer
}

func newKey() (*key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	s, err := signature.LoadSigner(priv, 0)
	if err != nil {
		return nil, err
	}
	return &key{pub: k, signer: s}, nil
}

// writer signs and writes metadata files into DIR/metadata.
type writer struct{ dir string }

func (w writer) write(name string, md interface {
	ToBytes(pretty bool) ([]byte, error)
}) error {
	b, err := md.ToBytes(false)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return os.WriteFile(filepath.Join(w.dir, "metadata", name), b, 0o644)
}
