package e2e_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/ferry-updates/ferry/keys"
	_ "github.com/ferry-updates/ferry/keys/awskms"
)

// kmsKey creates an ECC_NIST_P256 signing key in the local-kms server that
// .ci/run starts (FERRY_TEST_KMS) and opens it by reference, or skips.
func kmsKey(t *testing.T) keys.Signer {
	t.Helper()
	ep := os.Getenv("FERRY_TEST_KMS")
	if ep == "" {
		t.Skip("FERRY_TEST_KMS is unset: no KMS API server to test against (.ci/run starts local-kms and sets it)")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_ACCESS_KEY_ID", "ferrytest")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "ferrytest")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c := kms.New(kms.Options{Region: "eu-west-2", BaseEndpoint: aws.String(ep), Credentials: aws.AnonymousCredentials{}})
	out, err := c.CreateKey(bg, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("create kms key: %v", err)
	}
	s, err := keys.Open(bg, "awskms://"+*out.KeyMetadata.KeyId+"?region=eu-west-2&endpoint="+ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReleaseSignedInKMSInstalled: an application whose key is in a KMS
// (a real KMS API server on 127.0.0.1) publishes two releases; a client
// over HTTPS verifies the ECDSA signatures and installs the newest, and a
// flipped bit in the KMS signature makes the client refuse it.
func TestReleaseSignedInKMSInstalled(t *testing.T) {
	k := kmsKey(t)
	s := newSite(t, nil)
	s.publish("kmsapp", "1.0.0", k)
	s.delegatedTo("kmsapp", k)
	s.install("kmsapp", "1.0.0")
	s.publish("kmsapp", "1.1.0", k)
	s.install("kmsapp", "1.1.0")
	s.spoilAppSignature("kmsapp")
}

// TestOnlineKeysInKMS: snapshot, timestamp and rollout keys live in the KMS, so
// the repository's disk holds no private key of an online role at all;
// releases still publish, the server's refresh re-signs with the KMS
// alone (no passphrase, no key file), and clients install across it.
func TestOnlineKeysInKMS(t *testing.T) {
	online := map[string]keys.Signer{"snapshot": kmsKey(t), "timestamp": kmsKey(t), "rollout": kmsKey(t)}
	s := newSite(t, online)
	s.noOnlineKeyFiles()
	appKey := fileKey(t)
	s.publish("hello", "1.0.0", appKey, online["snapshot"], online["timestamp"])
	s.install("hello", "1.0.0")
	s.refreshOnline(online["snapshot"], online["timestamp"])
	s.install("hello", "1.0.0")
	s.publish("hello", "1.1.0", appKey, online["snapshot"], online["timestamp"])
	s.install("hello", "1.1.0")
	s.noOnlineKeyFiles()
}
