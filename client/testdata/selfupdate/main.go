// Command selfupdate is a tiny program that updates itself with ferry's
// client library; TestSelfUpdateEndToEnd builds it with its version set
// by -ldflags "-X main.version=V" (and "-X main.healthy=no" for a release
// that fails its health check).
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/install"
)

var (
	version = "0.0.0"
	healthy = "yes"
)

func main() {
	repoURL := flag.String("repo", "", "repository URL")
	root := flag.String("root", "", "trusted root.json")
	ca := flag.String("ca", "", "CA certificate (PEM)")
	state := flag.String("state", "", "state directory")
	health := flag.Bool("health", false, "health check: exit 0 if this build works")
	flag.Parse()
	if *health {
		if healthy != "yes" {
			fmt.Fprintf(os.Stderr, "selfupdate %s: cannot start\n", version)
			os.Exit(1)
		}
		os.Exit(0)
	}
	fmt.Printf("selfupdate %s running\n", version)
	if err := update(*repoURL, *root, *ca, *state); err != nil {
		fmt.Printf("selfupdate %s: %v\n", version, err)
		if !errors.Is(err, install.ErrRolledBack) {
			os.Exit(1)
		}
	}
	fmt.Printf("selfupdate %s done\n", version)
}

func update(repoURL, root, ca, state string) error {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := client.SelfUpdate(ctx, client.Config{
		URLs:            []string{repoURL},
		TrustedRootFile: root,
		StateDir:        state,
		App:             "selfupdate",
		Installed:       version,
		RootCAs:         pool,
	}, client.SelfUpdateOptions{
		Health: &install.Health{Cmd: []string{exe, "-health"}, Timeout: 20 * time.Second},
		Reexec: func(path string) error {
			fmt.Printf("selfupdate %s: installed %s, restarting\n", version, path)
			return install.Reexec(path)
		},
	})
	if out != nil {
		for _, s := range out.Skipped {
			fmt.Printf("selfupdate %s: not retrying %s, marked bad: %s\n", version, s.Version, s.Reason)
		}
	}
	if err != nil {
		return err
	}
	fmt.Printf("selfupdate %s is up to date\n", version)
	return nil
}
