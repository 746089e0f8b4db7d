package keys_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/keys"
)

const testWorkFactor = 10 // tests only: far below DefaultWorkFactor

func saveTestKey(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys", "k.age")
	if err := keys.Save(path, priv, []byte("correct horse"), testWorkFactor); err != nil {
		t.Fatal(err)
	}
	return path, priv
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path, priv := saveTestKey(t)
	got, err := keys.Load(path, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Equal(got) {
		t.Fatal("loaded key differs from saved key")
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("PRIVATE KEY")) || bytes.Contains(data, priv.Seed()) {
		t.Fatal("key file holds the private key in clear")
	}
}

func TestLoadErrors(t *testing.T) {
	path, _ := saveTestKey(t)
	good, _ := os.ReadFile(path)
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name       string
		data       []byte
		passphrase string
		kind       error
		msg        string
	}{
		{"wrong passphrase", good, "wrong", keys.ErrWrongPassphrase, "wrong passphrase for key "},
		{"empty passphrase", good, "", keys.ErrWrongPassphrase, "wrong passphrase for key "},
		{"truncated", good[:len(good)/2], "correct horse", keys.ErrCorrupted, "is corrupted: "},
		{"empty file", nil, "correct horse", keys.ErrCorrupted, "is corrupted: "},
		{"garbage", []byte("hello world\n"), "correct horse", keys.ErrCorrupted, "is corrupted: "},
		{"payload byte flipped", flip(len(good) - 5), "correct horse", keys.ErrCorrupted, "is corrupted: "},
		{"header version flipped", flip(5), "correct horse", keys.ErrCorrupted, "is corrupted: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k.age")
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := keys.Load(p, []byte(tt.passphrase))
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg+"") || !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %q, want one line naming %s and containing %q", err, p, tt.msg)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := keys.Load(filepath.Join(t.TempDir(), "nope.age"), []byte("x"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func TestSaveRejectsBadInput(t *testing.T) {
	priv, _ := keys.Generate()
	dir := t.TempDir()
	if err := keys.Save(filepath.Join(dir, "a"), priv, nil, testWorkFactor); err == nil {
		t.Error("empty passphrase accepted")
	}
	if err := keys.Save(filepath.Join(dir, "b"), priv, []byte("p"), 99); err == nil {
		t.Error("work factor 99 accepted")
	}
	for _, bad := range []ed25519.PrivateKey{nil, priv[:31], priv[:63]} {
		if err := keys.Save(filepath.Join(dir, "c"), bad, []byte("p"), testWorkFactor); err == nil {
			t.Errorf("private key of %d bytes accepted", len(bad))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused key left a file: %v", err)
	}
}

func TestSignerAndTUFKey(t *testing.T) {
	priv, _ := keys.Generate()
	fs, err := keys.NewFileSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := keys.TUFSigner(context.Background(), fs)
	msg := []byte("signed bytes")
	sig, err := s.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, msg, sig) {
		t.Fatal("signature does not verify")
	}
	k, err := keys.TUFKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type != "ed25519" || k.Scheme != "ed25519" {
		t.Fatalf("key type %q scheme %q", k.Type, k.Scheme)
	}
	id, err := keys.KeyID(pub)
	if err != nil || len(id) != 64 {
		t.Fatalf("key id %q, %v", id, err)
	}
	if _, err := keys.TUFKey(pub[:31]); err == nil {
		t.Fatal("short public key accepted")
	}
}

// A signer reference's inline PIN never reaches an error message.
func TestOpenRedactsPIN(t *testing.T) {
	for _, ref := range []string{
		"pkcs11:token=ferry;object=k;pin-value=123456",
		"pkcs11:token=ferry;object=k?pin-value=123456&module-path=/x.so",
		"nosuch://k;PIN-VALUE=123456",
	} {
		_, err := keys.Open(context.Background(), ref, nil)
		if err == nil {
			continue // a build with this scheme: its own parser redacts (keys/pkcs11 tests)
		}
		if strings.Contains(err.Error(), "123456") {
			t.Errorf("Open(%q): error shows the PIN: %v", ref, err)
		}
	}
	if got := keys.Redact("pkcs11:object=k;pin-value=s3cret;token=t"); got != "pkcs11:object=k;pin-value=REDACTED;token=t" {
		t.Errorf("Redact: %q", got)
	}
}
