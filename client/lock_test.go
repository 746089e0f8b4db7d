package client_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/internal/sentinel"
)

// Two runs that share a state directory: while one Update is running, a
// second client, in this process or in another one, is told the state
// directory is busy and by which process, with an error that wraps the one
// ErrBusy that install and repo use too; once the first run is done, the
// second one works.
func TestStateDirBusy(t *testing.T) {
	if os.Getenv("FERRY_TEST_BUSY_CHILD") != "" {
		busyChild()
		return
	}
	ctx := context.Background()
	f := newFixture(t)
	f.publish("hello", "1.0.0", "linux/amd64", "hello", script("1.0.0", healthy))
	cfg := f.config(t)
	first, second := newClient(t, cfg), newClient(t, cfg)
	inside, release := make(chan struct{}), make(chan struct{})
	rec := &recorder{before: func(install.Artifact) { close(inside); <-release }}
	done := make(chan error, 1)
	go func() { _, err := first.Update(ctx, rec); done <- err }()
	<-inside // the first run is installing

	checkBusy := func(err error, who string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error while another run holds %s", who, cfg.StateDir)
		}
		for _, s := range []error{client.ErrBusy, install.ErrBusy, sentinel.ErrBusy} {
			if !errors.Is(err, s) {
				t.Errorf("%s: %v does not wrap %v", who, err, s)
			}
		}
		want := fmt.Sprintf("state directory %s is busy: process %d is using it", cfg.StateDir, os.Getpid())
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q, want it to say %q", who, err, want)
		}
	}
	_, err := second.Check(ctx)
	checkBusy(err, "Check in this process")
	_, err = client.New(cfg)
	checkBusy(err, "New in this process")

	// The same from another process.
	dir := t.TempDir()
	rootFile, caFile := filepath.Join(dir, "root.json"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(rootFile, f.root, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStateDirBusy$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_BUSY_CHILD=1", "FERRY_URL="+f.srv.URL,
		"FERRY_ROOT="+rootFile, "FERRY_CA="+caFile, "FERRY_STATE="+cfg.StateDir)
	out, _ := cmd.CombinedOutput()
	want := fmt.Sprintf("child: client: state directory %s is busy: process %d is using it", cfg.StateDir, os.Getpid())
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "child: errors.Is busy") {
		t.Errorf("second process said:\n%s\nwant %q", out, want)
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first update: %v", err)
	}
	if _, err := second.Check(ctx); err != nil {
		t.Fatalf("check after the first run ended: %v", err)
	}
}

// busyChild is the second process of TestStateDirBusy: it prints what New
// says about the shared state directory.
func busyChild() {
	ca, _ := os.ReadFile(os.Getenv("FERRY_CA"))
	pool := x509Pool(ca)
	_, err := client.New(client.Config{
		URLs: []string{os.Getenv("FERRY_URL")}, TrustedRootFile: os.Getenv("FERRY_ROOT"),
		StateDir: os.Getenv("FERRY_STATE"), App: "hello", Platform: "linux/amd64", RootCAs: pool,
	})
	fmt.Printf("child: %v\n", err)
	if errors.Is(err, client.ErrBusy) {
		fmt.Println("child: errors.Is busy")
	}
}

func x509Pool(pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemBytes)
	return p
}
