package awskms_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/keys/awskms"
)

func TestParseRef(t *testing.T) {
	good := []struct {
		ref  string
		want awskms.Ref
	}{
		{"awskms://1234abcd-12ab-34cd-56ef-1234567890ab", awskms.Ref{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab"}},
		{"awskms:///alias/ferry-timestamp?region=eu-west-1", awskms.Ref{KeyID: "alias/ferry-timestamp", Region: "eu-west-1"}},
		{"awskms://arn:aws:kms:us-east-1:111122223333:key/k1?endpoint=https://kms.internal:8443",
			awskms.Ref{KeyID: "arn:aws:kms:us-east-1:111122223333:key/k1", Endpoint: "https://kms.internal:8443"}},
		{"awskms://k?endpoint=http://127.0.0.1:4599", awskms.Ref{KeyID: "k", Endpoint: "http://127.0.0.1:4599"}},
		{"awskms://k?endpoint=http://[::1]:4599", awskms.Ref{KeyID: "k", Endpoint: "http://[::1]:4599"}},
	}
	for _, tt := range good {
		got, err := awskms.ParseRef(tt.ref)
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tt.ref, got, err, tt.want)
		}
	}
	bad := []struct{ ref, msg string }{
		{"awskms://", "no key ID"},
		{"awskms://?region=x", "no key ID"},
		{"awskms://k?regoin=x", `unknown parameter "regoin"`},
		{"awskms://k?region=a&region=b", "given 2 times"},
		{"awskms://k?endpoint=http://kms.example:80", "plain http:// only to a loopback"},
		{"awskms://k?endpoint=http://localhost:4599", "plain http:// only to a loopback"},
		{"awskms://k?endpoint=http://10.0.0.1:4599", "plain http:// only to a loopback"},
		{"awskms://k?endpoint=ftp://127.0.0.1", "want https://"},
		{"awskms://k?endpoint=https://", "no host"},
		{"pkcs11:token=x", "want an awskms:// reference"},
	}
	for _, tt := range bad {
		_, err := awskms.ParseRef(tt.ref)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseRef(%q) err = %v, want %q", tt.ref, err, tt.msg)
		}
	}
}

// TestEndpointFromEnvironmentChecked: a plain-http endpoint that reaches
// the SDK through AWS_ENDPOINT_URL is refused like one in the reference.
func TestEndpointFromEnvironmentChecked(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://kms.example.invalid")
	_, err := keys.Open(context.Background(), "awskms://k?region=eu-west-2", nil)
	if err == nil || !strings.Contains(err.Error(), "plain http:// only to a loopback") {
		t.Fatalf("err = %v, want the endpoint refused", err)
	}
}

// isolate keeps the developer's AWS configuration out of a test.
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_ACCESS_KEY_ID", "ferrytest")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "ferrytest")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, v := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_SESSION_TOKEN"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
}

// localKMS returns the endpoint of the local-kms server .ci/run starts,
// with the environment set up for it, or skips.
func localKMS(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("FERRY_TEST_KMS")
	if ep == "" {
		t.Skip("FERRY_TEST_KMS is unset: no KMS API server to test against (.ci/run starts local-kms and sets it)")
	}
	isolate(t)
	return ep
}

func createKey(t *testing.T, ep string, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	c := kms.New(kms.Options{
		Region:       "eu-west-2",
		BaseEndpoint: aws.String(ep),
		Credentials:  aws.AnonymousCredentials{},
	})
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		t.Fatalf("create kms key: %v", err)
	}
	return *out.KeyMetadata.KeyId
}

// TestKMSSigner signs through a real KMS API server (local-kms) and checks
// the signature under the public key the signer reports.
func TestKMSSigner(t *testing.T) {
	ep := localKMS(t)
	id := createKey(t, ep, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	s, err := keys.Open(context.Background(), "awskms://"+id+"?region=eu-west-2&endpoint="+ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := s.Key(); k.Type != "ecdsa" || k.Scheme != "ecdsa-sha2-nistp256" {
		t.Fatalf("key %s/%s", k.Type, k.Scheme)
	}
	msg := []byte(`{"signed":"bytes"}`)
	sig, err := s.Sign(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.Key().ToPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("signature does not verify over SHA-256 of the message")
	}
	// The public key file round-trips to the same key ID.
	path := filepath.Join(t.TempDir(), "kms.pub")
	if err := keys.WritePublic(path, s.Key()); err != nil {
		t.Fatal(err)
	}
	k, err := keys.ReadPublic(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustID(t, k), mustID(t, s.Key()); a != b {
		t.Fatalf("key id %s after round trip, want %s", a, b)
	}
}

// TestKMSRefusesOtherKeys: a key that is not ECC_NIST_P256 SIGN_VERIFY, or
// that does not exist, is refused when the signer is opened.
func TestKMSRefusesOtherKeys(t *testing.T) {
	ep := localKMS(t)
	for _, tt := range []struct {
		name, id, msg string
	}{
		{"p384", createKey(t, ep, types.KeySpecEccNistP384, types.KeyUsageTypeSignVerify), "key spec ECC_NIST_P384"},
		{"symmetric", createKey(t, ep, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt), "kms get public key"},
		{"missing", "alias/no-such-key", "kms get public key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.Open(context.Background(), "awskms://"+tt.id+"?region=eu-west-2&endpoint="+ep, nil)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
		})
	}
	var nf *types.NotFoundException
	_, err := keys.Open(context.Background(), "awskms://alias/no-such-key?region=eu-west-2&endpoint="+ep, nil)
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want a wrapped NotFoundException", err)
	}
}

func mustID(t *testing.T, k interface{ ID() (string, error) }) string {
	t.Helper()
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
