package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/trust"
)

// The benchmarks below measure the no-change refresh without a network:
// metadata comes from the generated files on disk, so time and allocations
// are the clients' own. They only run with -bench, for example:
//
//	go test ./bench/refresh -run '^$' -bench NoChange/1000 -benchmem

// dirSource serves DIR/metadata/NAME to ferry's trust client.
type dirSource struct{ dir string }

func (s dirSource) FetchMetadata(_ context.Context, name string, maxLen int64) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "metadata", name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, trust.ErrNotFound)
	}
	if err == nil && int64(len(b)) > maxLen {
		return nil, fmt.Errorf("%s: longer than %d bytes", name, maxLen)
	}
	return b, err
}

// dirFetcher serves the same files to go-tuf's updater.
type dirFetcher struct{ dir string }

func (f dirFetcher) DownloadFile(u string, maxLen int64, _ time.Duration) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, "metadata", path.Base(u)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: u}
	}
	if err == nil && int64(len(b)) > maxLen {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: u}
	}
	return b, err
}

var benchSizes = []int{1000, 10000}

// benchDir holds the repositories generated for benchmarks, shared by all
// of them and removed by TestMain.
var benchDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchDataset generates (once per process) the repositories for n targets.
func benchDataset(b *testing.B, n int) *dataset {
	b.Helper()
	if benchDir == "" {
		d, err := os.MkdirTemp("", "ferry-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
	}
	ds, err := generate(context.Background(), benchDir, n, 100, true)
	if err != nil {
		b.Fatal(err)
	}
	return ds
}

func BenchmarkNoChange(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ds := benchDataset(b, n)
			b.Run("ferry", func(b *testing.B) { benchFerry(b, ds) })
			b.Run("gotuf-a", func(b *testing.B) { benchGoTUF(b, ds, ds.ferry) })
			b.Run("gotuf-b", func(b *testing.B) { benchGoTUF(b, ds, ds.flat) })
		})
	}
}

func benchFerry(b *testing.B, ds *dataset) {
	ctx := context.Background()
	root, err := os.ReadFile(ds.ferry.rootFile)
	if err != nil {
		b.Fatal(err)
	}
	tc, err := trust.New(trust.Config{Root: root, Store: metastore.Dir(b.TempDir())})
	if err != nil {
		b.Fatal(err)
	}
	src := dirSource{ds.ferry.public}
	check := func() {
		if err := tc.Refresh(ctx, src); err != nil {
			b.Fatal(err)
		}
		ts, err := tc.TargetsUnder(ctx, src, ds.app+"/")
		if err != nil || ts[ds.lookup] == nil {
			b.Fatalf("TargetsUnder: %d targets, %v", len(ts), err)
		}
	}
	check()
	b.ReportAllocs()
	for b.Loop() {
		check()
	}
}

func benchGoTUF(b *testing.B, ds *dataset, l layout) {
	root, err := os.ReadFile(l.rootFile)
	if err != nil {
		b.Fatal(err)
	}
	state := b.TempDir()
	check := func() {
		cfg, err := config.New("https://127.0.0.1/metadata/", root)
		if err != nil {
			b.Fatal(err)
		}
		cfg.LocalMetadataDir, cfg.LocalTargetsDir = state, filepath.Join(state, "targets")
		cfg.Fetcher = dirFetcher{l.public}
		if ds.targetsMax > 0 {
			cfg.TargetsMaxLength = ds.targetsMax
		}
		up, err := updater.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := up.Refresh(); err != nil {
			b.Fatal(err)
		}
		if tf, err := up.GetTargetInfo(ds.lookup); err != nil || !strings.HasPrefix(tf.Path, ds.app+"/") {
			b.Fatalf("GetTargetInfo: %v", err)
		}
	}
	check()
	b.ReportAllocs()
	for b.Loop() {
		check()
	}
}

// memStore keeps trusted metadata in memory, to separate the cost of
// durable writes (metastore.Dir fsyncs each file and its directory) from the
// refresh itself.
type memStore map[string][]byte

func (m memStore) Load(role string) ([]byte, error) {
	b, ok := m[role]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}

func (m memStore) Save(role string, data []byte) error {
	m[role] = append([]byte(nil), data...)
	return nil
}

// BenchmarkFirst measures a first refresh and lookup from an empty store:
//
//	go test ./bench/refresh -run '^$' -bench First/1000 -benchmem
func BenchmarkFirst(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ds := benchDataset(b, n)
			root, err := os.ReadFile(ds.ferry.rootFile)
			if err != nil {
				b.Fatal(err)
			}
			stores := map[string]func(b *testing.B) trust.Store{
				"ferry-dirstore": func(b *testing.B) trust.Store { return metastore.Dir(b.TempDir()) },
				"ferry-memstore": func(*testing.B) trust.Store { return memStore{} },
			}
			for name, store := range stores {
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						firstFerry(b, ds, root, store(b))
					}
				})
			}
		})
	}
}

func firstFerry(b *testing.B, ds *dataset, root []byte, st trust.Store) {
	ctx := context.Background()
	tc, err := trust.New(trust.Config{Root: root, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	src := dirSource{ds.ferry.public}
	if err := tc.Refresh(ctx, src); err != nil {
		b.Fatal(err)
	}
	if ts, err := tc.TargetsUnder(ctx, src, ds.app+"/"); err != nil || ts[ds.lookup] == nil {
		b.Fatalf("TargetsUnder: %d targets, %v", len(ts), err)
	}
}
