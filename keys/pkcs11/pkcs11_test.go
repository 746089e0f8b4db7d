//go:build pkcs11

package pkcs11_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/softhsm"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/keys/pkcs11"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsm.Cleanup()
	os.Exit(code)
}

func verify(t *testing.T, s keys.Signer, msg, sig []byte) {
	t.Helper()
	pub, err := s.Key().ToPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("signature does not verify over SHA-256 of the message")
	}
}

// TestGenerateAndSign creates a key pair in SoftHSM2, signs with it, opens
// it again by URI and signs TUF metadata that go-tuf verifies.
func TestGenerateAndSign(t *testing.T) {
	softhsm.Token(t)
	ctx := context.Background()
	uri := softhsm.URI("gen-sign")
	s, err := pkcs11.Generate(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if k := s.Key(); k.Type != "ecdsa" || k.Scheme != "ecdsa-sha2-nistp256" {
		t.Fatalf("key %s/%s", k.Type, k.Scheme)
	}
	if _, err := pkcs11.Generate(ctx, uri); err == nil || !strings.Contains(err.Error(), "already holds a key pair") {
		t.Fatalf("second generate: err = %v, want refused", err)
	}
	again, err := keys.Open(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := s.Key().ID()
	id2, _ := again.Key().ID()
	if id1 != id2 {
		t.Fatalf("reopened key %s, generated %s", id2, id1)
	}
	msg := []byte("canonical bytes")
	sig, err := again.Sign(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, s, msg, sig)

	root := metadata.Root(time.Now().Add(time.Hour))
	root.Signed.AddKey(again.Key(), metadata.ROOT)
	if _, err := root.Sign(keys.TUFSigner(ctx, again)); err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		t.Fatalf("go-tuf refuses the HSM signature: %v", err)
	}
}

func pkcs11Tool(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		t.Skip("pkcs11-tool is not on PATH: apt-get install -y opensc (.ci/run does)")
	}
	base := []string{"--module", softhsm.Module, "--token-label", softhsm.Label, "--login", "--pin", softhsm.PIN}
	out, err := exec.Command("pkcs11-tool", append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool %v: %v\n%s", args, err, out)
	}
}

// TestKeyMadeWithPKCS11Tool: a key pair an operator creates with OpenSC's
// pkcs11-tool (as docs/signers.md shows) is found by object or by id, with
// the PIN from a pin-source file.
func TestKeyMadeWithPKCS11Tool(t *testing.T) {
	softhsm.Token(t)
	pkcs11Tool(t, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "tool-key", "--id", "a1b2")
	pinFile := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pinFile, []byte(softhsm.PIN+"\n"), 0o600)
	q := "?module-path=" + softhsm.Module + "&pin-source=file:" + pinFile
	byLabel, err := keys.Open(context.Background(), "pkcs11:token="+softhsm.Label+";object=tool-key"+q, nil)
	if err != nil {
		t.Fatal(err)
	}
	byID, err := keys.Open(context.Background(), "pkcs11:token="+softhsm.Label+";id=%a1%b2"+q, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := byLabel.Key().ID()
	b, _ := byID.Key().ID()
	if a != b {
		t.Fatalf("by label %s, by id %s", a, b)
	}
	sig, err := byID.Sign(context.Background(), []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	verify(t, byLabel, []byte("m"), sig)
}

// TestOpenRefuses: no such key, a key of another type and
// a token that does not exist are errors that name the key, not the PIN.
func TestOpenRefuses(t *testing.T) {
	softhsm.Token(t)
	pkcs11Tool(t, "--keypairgen", "--key-type", "rsa:2048", "--label", "rsa-key", "--id", "c3")
	pkcs11Tool(t, "--keypairgen", "--key-type", "EC:secp384r1", "--label", "p384-key", "--id", "c4")
	for _, tt := range []struct{ name, uri, msg string }{
		{"missing", softhsm.URI("no-such-key"), "0 key pairs match"},
		{"rsa", softhsm.URI("rsa-key"), "want ECDSA P-256"},
		{"p384", softhsm.URI("p384-key"), "want curve P-256"},
		{"no token", strings.Replace(softhsm.URI("k"), "token="+softhsm.Label, "token=nope", 1), "open token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.Open(context.Background(), tt.uri, nil)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "pin-value=") {
				t.Fatalf("error shows the PIN: %v", err)
			}
		})
	}
}

// TestWrongPIN runs in a child process: PKCS#11 login state is shared by
// every session of a process, so once this test process has logged in, a
// wrong PIN would not be checked again.
func TestWrongPIN(t *testing.T) {
	softhsm.Token(t)
	uri := strings.Replace(softhsm.URI("any"), "pin-value="+softhsm.PIN, "pin-value=0000", 1)
	if os.Getenv("FERRY_PKCS11_CHILD") == "1" {
		_, err := keys.Open(context.Background(), uri, nil)
		os.Stdout.WriteString("child error: " + fmt.Sprint(err) + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWrongPIN$", "-test.v")
	cmd.Env = append(os.Environ(), "FERRY_PKCS11_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "child error: signer pkcs11:token=ferry-test;object=any: open token:") ||
		!strings.Contains(string(out), "CKR_PIN_INCORRECT") || strings.Contains(string(out), "0000") {
		t.Fatalf("child output:\n%s", out)
	}
}
