package repo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-updates/ferry/repo"
)

func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "repo")
	pass := []byte("example passphrase")

	// Tests may lower the scrypt work factor; real repositories keep the default.
	if err := repo.Init(ctx, dir, repo.InitOptions{Passphrase: pass, InsecureScryptWorkFactor: 10}); err != nil {
		fmt.Println(err)
		return
	}
	r, err := repo.Open(dir, pass)
	if err != nil {
		fmt.Println(err)
		return
	}
	bin := filepath.Join(tmp, "hello")
	os.WriteFile(bin, []byte("#!/bin/sh\necho hello\n"), 0o755)
	rel := repo.Release{App: "hello", Version: "1.4.2", Platform: "linux/amd64"}
	if err := r.Publish(ctx, rel, []string{bin}); err != nil {
		fmt.Println(err)
		return
	}
	res, _ := r.PublishBatch(ctx, []repo.Batch{{Release: rel, Files: []string{bin}}})
	fmt.Println("unchanged on re-publish:", res.Unchanged)

	entries, _ := r.List(ctx)
	for _, e := range entries {
		fmt.Println(e.Path, e.Kind, e.Length)
	}
	// Output:
	// unchanged on re-publish: [hello 1.4.2 linux/amd64]
	// hello/1.4.2/linux-amd64/hello binary 21
}
