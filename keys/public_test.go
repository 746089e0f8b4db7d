package keys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
)

func ecdsaKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPublicRoundTrip(t *testing.T) {
	priv, _ := keys.Generate()
	edKey, _ := keys.TUFKey(priv.Public().(ed25519.PublicKey))
	ecKey, err := keys.ECDSAKey(&ecdsaKey(t, elliptic.P256()).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*metadata.Key{edKey, ecKey} {
		t.Run(k.Type, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.pub")
			if err := keys.WritePublic(path, k); err != nil {
				t.Fatal(err)
			}
			got, err := keys.ReadPublic(path)
			if err != nil {
				t.Fatal(err)
			}
			wantID, _ := k.ID()
			gotID, _ := got.ID()
			if gotID != wantID || got.Type != k.Type || got.Scheme != k.Scheme {
				t.Fatalf("read back %s %s %s, want %s %s %s", got.Type, got.Scheme, gotID, k.Type, k.Scheme, wantID)
			}
		})
	}
}

func TestParsePublicRefuses(t *testing.T) {
	ecKey, _ := keys.ECDSAKey(&ecdsaKey(t, elliptic.P256()).PublicKey)
	ecJSON, _ := json.Marshal(ecKey.Value.PublicKey)
	ec := string(ecJSON)
	ed := strings.Repeat("ab", 32)
	tests := []struct{ name, data, msg string }{
		{"empty", ``, "EOF"},
		{"not json", `hello`, "invalid character"},
		{"unknown field", `{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` + ed + `"},"x":1}`, "unknown field"},
		{"unknown keyval field", `{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` + ed + `","private":"00"}}`, "unknown field"},
		{"trailing", `{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` + ed + `"}} {}`, "trailing data"},
		{"short ed25519", `{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"abcd"}}`, "32 bytes of hex"},
		{"rsa", `{"keytype":"rsa","scheme":"rsassa-pss-sha256","keyval":{"public":"x"}}`, "unsupported keytype"},
		{"mixed scheme", `{"keytype":"ed25519","scheme":"ecdsa-sha2-nistp256","keyval":{"public":"` + ed + `"}}`, "unsupported keytype"},
		{"ecdsa not pem", `{"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp256","keyval":{"public":"` + ed + `"}}`, "PEM block"},
		{"ecdsa ok but p384 scheme", `{"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp384","keyval":{"public":` + ec + `}}`, "unsupported keytype"},
		{"too large", strings.Repeat(" ", 9000), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.ParsePublic([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tt.msg)
			}
		})
	}
	if _, err := keys.ParsePublic([]byte(`{"keytype":"ecdsa","scheme":"ecdsa-sha2-nistp256","keyval":{"public":` + ec + `}}`)); err != nil {
		t.Fatalf("valid ecdsa key refused: %v", err)
	}
}

func TestECDSAKeyRefusesOtherCurves(t *testing.T) {
	if _, err := keys.ECDSAKey(&ecdsaKey(t, elliptic.P384()).PublicKey); err == nil {
		t.Fatal("P-384 key accepted as ecdsa-sha2-nistp256")
	}
	if _, err := keys.ECDSAKey(nil); err == nil {
		t.Fatal("nil key accepted")
	}
}

func TestReadPublicMissing(t *testing.T) {
	_, err := keys.ReadPublic(filepath.Join(t.TempDir(), "nope.pub"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func FuzzParsePublic(f *testing.F) {
	priv, _ := keys.Generate()
	edKey, _ := keys.TUFKey(priv.Public().(ed25519.PublicKey))
	ecKey, _ := keys.ECDSAKey(&ecdsaKey(f, elliptic.P256()).PublicKey)
	for _, k := range []*metadata.Key{edKey, ecKey} {
		b, _ := keys.MarshalPublic(k)
		f.Add(b)
	}
	f.Add([]byte(`{"keytype":"ed25519"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := keys.ParsePublic(data)
		if err != nil {
			return
		}
		// Whatever parses writes back and parses to the same key ID.
		b, err := keys.MarshalPublic(k)
		if err != nil {
			t.Fatalf("parsed key does not marshal: %v", err)
		}
		k2, err := keys.ParsePublic(b)
		if err != nil {
			t.Fatalf("marshalled key does not parse: %v", err)
		}
		id1, _ := k.ID()
		id2, _ := k2.ID()
		if id1 != id2 {
			t.Fatalf("key id changed across a round trip: %s, %s", id1, id2)
		}
	})
}

// TestECDSASigner signs TUF metadata through NewECDSASigner (the path
// PKCS#11 and KMS keys take) and checks that go-tuf verifies it, and that
// a device answering with a bad signature is caught before anything is
// signed.
func TestECDSASigner(t *testing.T) {
	priv := ecdsaKey(t, elliptic.P256())
	device := func(_ context.Context, d []byte) ([]byte, error) { return ecdsa.SignASN1(rand.Reader, priv, d) }
	s, err := keys.NewECDSASigner("test:key", &priv.PublicKey, device)
	if err != nil {
		t.Fatal(err)
	}
	if s.Key().Type != "ecdsa" || s.Key().Scheme != "ecdsa-sha2-nistp256" {
		t.Fatalf("key %s/%s", s.Key().Type, s.Key().Scheme)
	}
	root := metadata.Root(time.Now().Add(time.Hour))
	if err := root.Signed.AddKey(s.Key(), metadata.ROOT); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Sign(keys.TUFSigner(context.Background(), s)); err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		t.Fatalf("go-tuf does not verify the signature: %v", err)
	}

	other := ecdsaKey(t, elliptic.P256())
	wrongKey := func(_ context.Context, d []byte) ([]byte, error) { return ecdsa.SignASN1(rand.Reader, other, d) }
	raw := func(_ context.Context, d []byte) ([]byte, error) {
		r, s, err := ecdsa.Sign(rand.Reader, priv, d)
		return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...), err
	}
	for name, dev := range map[string]keys.SignDigest{"other key": wrongKey, "raw r||s": raw} {
		bad, _ := keys.NewECDSASigner("test:key", &priv.PublicKey, dev)
		if _, err := bad.Sign(context.Background(), []byte("m")); !errors.Is(err, keys.ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := keys.NewECDSASigner("p384", &ecdsaKey(t, elliptic.P384()).PublicKey, device); err == nil {
		t.Error("P-384 key accepted")
	}
}

// TestOpenUnregisteredScheme: a scheme this program lacks is an error that
// says how to get it; an unknown one is named.
func TestOpenUnregisteredScheme(t *testing.T) {
	for ref, msg := range map[string]string{
		"awskms://alias/k?region=eu-west-1": "import github.com/ferry-updates/ferry/keys/awskms",
		"pkcs11:token=t;object=k":           "build with -tags pkcs11",
		"gcpkms://projects/p":               `unknown scheme "gcpkms"`,
	} {
		_, err := keys.Open(context.Background(), ref, nil)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Open(%q) = %v, want %q", ref, err, msg)
		}
	}
}
