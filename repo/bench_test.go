package repo

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPublishBatch publishes b.N targets spread over 100 applications
// in one PublishBatch (try -benchtime=10000x or 100000x).
func BenchmarkPublishBatch(b *testing.B) {
	clk := &testClock{t: time.Now()}
	dir := filepath.Join(b.TempDir(), "repo")
	if err := initRepo(ctx, dir, InitOptions{Passphrase: []byte("p"), InsecureScryptWorkFactor: 8}, clk.now); err != nil {
		b.Fatal(err)
	}
	r, err := Open(dir, []byte("p"))
	if err != nil {
		b.Fatal(err)
	}
	src := b.TempDir()
	var batch []Batch
	for i := range b.N {
		rel := Release{App: fmt.Sprintf("app%03d", i%100), Version: fmt.Sprintf("1.%d.0", i/100), Platform: "linux/amd64"}
		f := filepath.Join(src, fmt.Sprintf("f%d", i), "bin")
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte(rel.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		batch = append(batch, Batch{Release: rel, Files: []string{f}})
	}
	b.ResetTimer()
	if _, err := r.PublishBatch(ctx, batch); err != nil {
		b.Fatal(err)
	}
}
