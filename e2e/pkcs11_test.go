//go:build pkcs11

package e2e_test

import (
	"testing"

	"github.com/ferry-updates/ferry/internal/softhsm"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/keys/pkcs11"
)

// The SoftHSM2 token is removed after the tests (TestMain in ferrycmd_test.go).
func init() { afterTests = append(afterTests, softhsm.Cleanup) }

// hsmKey creates an ECDSA P-256 key pair labelled object in the SoftHSM2
// test token, or skips when SoftHSM2 is not installed.
func hsmKey(t *testing.T, object string) keys.Signer {
	t.Helper()
	softhsm.Token(t)
	if _, err := pkcs11.Generate(bg, softhsm.URI(object)); err != nil {
		t.Fatal(err)
	}
	s, err := keys.Open(bg, softhsm.URI(object), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReleaseSignedInHSMInstalled: an application whose key is in a
// PKCS#11 token (SoftHSM2) publishes two releases; a client over HTTPS
// verifies the ECDSA signatures and installs the newest, and a flipped bit
// in the token's signature makes the client refuse it.
func TestReleaseSignedInHSMInstalled(t *testing.T) {
	k := hsmKey(t, "e2e-app")
	s := newSite(t, nil)
	s.publish("hsmapp", "1.0.0", k)
	s.delegatedTo("hsmapp", k)
	s.install("hsmapp", "1.0.0")
	s.publish("hsmapp", "1.1.0", k)
	s.install("hsmapp", "1.1.0")
	s.spoilAppSignature("hsmapp")
}

// TestReleasesSignedInHSMAndKMSInstalled: one repository, one application
// signed in the PKCS#11 token and another in the KMS, its snapshot key in
// the token and its timestamp and rollout keys in the KMS; clients install both.
func TestReleasesSignedInHSMAndKMSInstalled(t *testing.T) {
	kmsApp := kmsKey(t)
	online := map[string]keys.Signer{"snapshot": hsmKey(t, "e2e-snapshot"), "timestamp": kmsKey(t), "rollout": kmsKey(t)}
	s := newSite(t, online)
	s.noOnlineKeyFiles()
	hsmApp := hsmKey(t, "e2e-both-app")
	s.publish("hsmapp", "2.0.0", hsmApp, online["snapshot"], online["timestamp"])
	s.publish("kmsapp", "3.0.0", kmsApp, online["snapshot"], online["timestamp"])
	s.delegatedTo("hsmapp", hsmApp)
	s.delegatedTo("kmsapp", kmsApp)
	s.refreshOnline(online["snapshot"], online["timestamp"])
	s.install("hsmapp", "2.0.0")
	s.install("kmsapp", "3.0.0")
	s.spoilAppSignature("kmsapp")
	s.noOnlineKeyFiles()
}

// TestRootHeldInHSMAndKMS: a 2-of-2 root whose keys are one in a PKCS#11
// token and one in a KMS (ECDSA, PEM public values) is signed by both
// holders and published; a client that trusts it installs a release.
func TestRootHeldInHSMAndKMS(t *testing.T) {
	holders := []keys.Signer{hsmKey(t, "e2e-root"), kmsKey(t)}
	s := newSiteRoot(t, nil, holders)
	s.publish("hello", "1.0.0", fileKey(t))
	s.install("hello", "1.0.0")
}
