package install_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-updates/ferry/install"
)

func Example() {
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)

	// A verified download: the bytes and the signed facts about them.
	body := []byte("#!/bin/sh\necho hello 1.1.0\n")
	sum := sha256.Sum256(body)
	file := filepath.Join(dir, "hello.download")
	os.WriteFile(file, body, 0o600)

	s := &install.Slots{Root: filepath.Join(dir, "apps"), App: "hello"}
	if _, err := s.Recover(context.Background()); err != nil { // at start
		fmt.Println(err)
	}
	res, err := s.Apply(context.Background(), install.Artifact{
		File: file, Length: int64(len(body)), Hashes: map[string][]byte{"sha256": sum[:]},
		App: "hello", Version: "1.1.0", Kind: install.KindBinary,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	link, _ := os.Readlink(s.Current())
	fmt.Println(res.Version, link)
	// Output: 1.1.0 versions/1.1.0
}

// A program that updates itself: recover at start, apply a verified
// download over its own executable, then run the new version.
func ExampleBinary() {
	ctx := context.Background()
	exe, err := os.Executable()
	if err != nil {
		return
	}
	b := &install.Binary{
		App:      "hello",
		Target:   exe,
		StateDir: filepath.Join(os.TempDir(), "hello-update-state"),
		Health:   &install.Health{Cmd: []string{exe, "--version"}, Timeout: 10 * time.Second},
	}
	if _, err := b.Recover(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "update recovery:", err) // keep running the current version
	}
	var a install.Artifact // from the client: the download and its signed length and hashes
	res, err := b.Apply(ctx, a)
	switch {
	case errors.Is(err, install.ErrRolledBack):
		fmt.Fprintln(os.Stderr, "update rolled back:", res.Reason)
	case err != nil:
		fmt.Fprintln(os.Stderr, "update failed:", err)
	case !res.Unchanged:
		install.Reexec(b.Target)
	}
}
