package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// kmsRefs creates n ECC_NIST_P256 keys in the local-kms server of .ci/run
// (FERRY_TEST_KMS) and returns their awskms:// references, or skips.
func kmsRefs(t *testing.T, n int) []string {
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
	var refs []string
	for range n {
		out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
		if err != nil {
			t.Fatalf("create kms key: %v", err)
		}
		refs = append(refs, "awskms://"+*out.KeyMetadata.KeyId+"?region=eu-west-2&endpoint="+ep)
	}
	return refs
}

type cli struct {
	t   *testing.T
	env map[string]string
}

func (c *cli) run(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return c.env[k] }}
	code := e.run(ctx, args)
	return code, stdout.String(), stderr.String()
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(context.Background(), args...)
	if code != 0 {
		c.t.Fatalf("ferry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestServeOnlineKeysInKMS_NoKeyOnDisk: with snapshot, timestamp and rollout in a
// KMS, ferry init makes no key file for them, the server and refresh run
// with no passphrase at all (nothing on the server's disk can sign), a
// client installs over HTTPS, and a KMS key that root does not list is
// refused by name.
func TestServeOnlineKeysInKMS_NoKeyOnDisk(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("ferry update --out uses a unix program")
	}
	refs := kmsRefs(t, 4)
	snap, ts, stray, ro := "snapshot="+refs[0], "timestamp="+refs[1], "timestamp="+refs[2], "rollout="+refs[3]
	d := t.TempDir()
	repoDir, off := filepath.Join(d, "repo"), filepath.Join(d, "offline")
	c := &cli{t: t, env: map[string]string{envPassphrase: "offline pass", envInsecureWorkFactor: "8"}}
	c.ok("init", repoDir, "--offline-keys", off, "--online-key", snap, "--online-key", ts, "--online-key", ro)
	noKeyFiles(t, repoDir)
	list := c.ok("key", "list", "--repo", repoDir)
	if n := strings.Count(list, "ecdsa:MFkw"); n != 3 || strings.Count(list, "\n") != 6 || strings.Count(list, "held elsewhere") != 3 {
		t.Fatalf("key list shows %d ECDSA keys, want 3, one line per key:\n%s", n, list)
	}
	app := filepath.Join(d, "hello")
	os.WriteFile(app, []byte("#!/bin/sh\necho hello 1.0.0\n"), 0o755)
	c.ok("release", "publish", "--repo", repoDir, "--offline-keys", off, "--online-key", snap, "--online-key", ts,
		"--app", "hello", "--version", "1.0.0", "--platform", "linux/amd64", app)

	// From here on, as on the server: no passphrase, no offline keys.
	c.env = map[string]string{}
	noKeyFiles(t, repoDir)
	out := c.ok("repo", "refresh", "--repo", repoDir, "--online-only", "--force", "--online-key", snap, "--online-key", ts, "--online-key", ro)
	if !strings.Contains(out, "re-signed") || !strings.Contains(out, "timestamp") {
		t.Fatalf("refresh: %s", out)
	}
	code, _, errs := c.run(context.Background(), "repo", "refresh", "--repo", repoDir, "--online-only", "--force")
	if code != 1 || !strings.Contains(errs, "sign timestamp: 0 of 1 keys available") || !strings.Contains(errs, "--online-key ROLE=REF") {
		t.Fatalf("refresh without the online keys: exit %d, %s", code, errs)
	}
	code, _, errs = c.run(context.Background(), "serve", "--repo", repoDir, "--addr", "127.0.0.1:0", "--self-signed", filepath.Join(d, "x.pem"), "--online-key", stray, "--online-key", snap)
	if code != 1 || !strings.Contains(errs, "is not a timestamp key of this repository's root") {
		t.Fatalf("serve with a stray online key: exit %d, %s", code, errs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	urlFile, ca := filepath.Join(d, "url"), filepath.Join(d, "ca.pem")
	go func() {
		defer close(done)
		c.run(ctx, "serve", "--repo", repoDir, "--addr", "127.0.0.1:0", "--self-signed", ca, "--addr-file", urlFile,
			"--online-key", snap, "--online-key", ts, "--online-key", ro)
	}()
	defer func() { cancel(); <-done }()
	url := waitFile(t, urlFile, done)
	out = c.ok("update", "--repo", url, "--root", filepath.Join(repoDir, "root.json"), "--ca", ca,
		"--app", "hello", "--platform", "linux/amd64", "--out", filepath.Join(d, "bin"), "--state-dir", filepath.Join(d, "state"))
	got, err := os.ReadFile(filepath.Join(d, "bin", "hello"))
	if err != nil || !strings.Contains(string(got), "hello 1.0.0") {
		t.Fatalf("update: %s; installed %q, %v", out, got, err)
	}
	noKeyFiles(t, repoDir)
}

// noKeyFiles fails if any private key file is under dir.
func noKeyFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".age") {
			t.Fatalf("private key file %s in the repository", p)
		}
		return nil
	})
}

// waitFile waits for serve to write its URL (or to exit).
func waitFile(t *testing.T, path string, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return strings.TrimSpace(string(b))
		}
		select {
		case <-exited:
			t.Fatal("serve exited before listening")
		case <-deadline:
			t.Fatal("serve did not write its URL within 30s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
