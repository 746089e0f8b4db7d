package client_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
)

func ExampleClient() {
	// A repository with hello 1.0.0 and 1.1.0, served over HTTPS.
	url, root, pool, done := exampleRepository()
	defer done()

	state, _ := os.MkdirTemp("", "ferry-state-")
	defer os.RemoveAll(state)
	c, err := client.New(client.Config{
		URLs:        []string{url},
		TrustedRoot: root, // shipped with the application
		StateDir:    state,
		App:         "hello",
		Platform:    "linux/amd64",
		Installed:   "1.0.0",
		RootCAs:     pool,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	rel, err := c.Check(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if rel == nil {
		fmt.Println("up to date")
		return
	}
	fmt.Println("update available:", rel.App, rel.Version, rel.Path)
	path, err := c.Download(ctx, rel, filepath.Join(state, "new"))
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	fmt.Printf("verified %s: %s", filepath.Base(path), b)
	// Output:
	// update available: hello 1.1.0 hello/1.1.0/linux-amd64/hello
	// verified hello: hello 1.1.0
}

// exampleRepository publishes two versions of hello and serves them.
func exampleRepository() (url string, root []byte, pool *x509.CertPool, done func()) {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "ferry-example-")
	if err != nil {
		log.Fatal(err)
	}
	dir, pass := filepath.Join(tmp, "repo"), []byte("example passphrase")
	if err := repo.Init(ctx, dir, repo.InitOptions{Passphrase: pass, InsecureScryptWorkFactor: 10}); err != nil {
		log.Fatal(err)
	}
	r, err := repo.Open(dir, pass)
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		src := filepath.Join(tmp, v, "hello")
		os.MkdirAll(filepath.Dir(src), 0o755)
		os.WriteFile(src, []byte("hello "+v+"\n"), 0o755)
		rel := repo.Release{App: "hello", Version: v, Platform: "linux/amd64"}
		if err := r.Publish(ctx, rel, []string{src}); err != nil {
			log.Fatal(err)
		}
	}
	h, err := server.Repository(filepath.Join(dir, "public"))
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	pool = x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	root, err = os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		log.Fatal(err)
	}
	return srv.URL, root, pool, func() { srv.Close(); os.RemoveAll(tmp) }
}

// ExampleSelfUpdate is how a program updates itself: early in main, check,
// install the new version over the running executable, health-check it by
// running it with --health, and re-execute it. A release that fails the
// check is rolled back and never retried; the program carries on.
func ExampleSelfUpdate() {
	if len(os.Args) > 1 && os.Args[1] == "--health" {
		os.Exit(0) // the new version starts: a real check would do more
	}
	exe, _ := os.Executable()
	out, err := client.SelfUpdate(context.Background(), client.Config{
		URLs:            []string{"https://updates.example.com/"},
		TrustedRootFile: "/etc/hello/root.json",
		StateDir:        "/var/lib/hello/ferry",
		App:             "hello",
		Installed:       "1.4.1", // set with -ldflags "-X main.version=..."
	}, client.SelfUpdateOptions{
		Health: &install.Health{Cmd: []string{exe, "--health"}, Timeout: 10 * time.Second},
	})
	switch {
	case errors.Is(err, install.ErrRolledBack):
		log.Printf("update failed its health check and was rolled back: %v", err)
	case err != nil:
		log.Printf("no update: %v", err)
	case out.Release == nil:
		log.Print("up to date")
	}
}
