package repo

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/keys"
)

// TestInitOnlineSigners: online keys given to Init are listed in root for
// their roles and no key file is made for them; a signer for any other
// role is refused.
func TestInitOnlineSigners(t *testing.T) {
	priv, _ := keys.Generate()
	ts, _ := keys.NewFileSigner(priv)
	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	err := Init(context.Background(), dir, InitOptions{
		Passphrase: []byte(testPassphrase), OfflineKeys: filepath.Join(base, "off"),
		OnlineSigners: map[string]keys.Signer{"timestamp": ts}, InsecureScryptWorkFactor: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := Keys(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ts.Key().ID()
	for _, k := range ks {
		if k.Role == "timestamp" && k.KeyID != want {
			t.Fatalf("timestamp key %s, want the given signer's %s", k.KeyID, want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "keys", "timestamp*")); len(m) != 0 {
		t.Fatalf("a timestamp key file was made: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "keys", "snapshot*")); len(m) == 0 {
		t.Fatal("no snapshot key file: only the given role's key is external")
	}
	err = Init(context.Background(), filepath.Join(base, "repo2"), InitOptions{
		Passphrase: []byte(testPassphrase), OnlineSigners: map[string]keys.Signer{"targets": ts}, InsecureScryptWorkFactor: 8,
	})
	if err == nil || !strings.Contains(err.Error(), `online signer for "targets"`) {
		t.Fatalf("targets as an online signer: err = %v", err)
	}
}
