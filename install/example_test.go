package install_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

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
