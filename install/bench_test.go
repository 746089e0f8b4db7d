package install

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// The benchmarks compare Apply with the raw cost of writing, fsyncing and
// renaming the same bytes on the same disk in the same run:
//
//	go test ./install -run '^$' -bench . -benchtime 5x

const benchSize = 40 << 20

var benchN int // unique versions across -count runs

func randomBytes(b *testing.B, n int) []byte {
	buf := make([]byte, n)
	rand.Read(buf)
	return buf
}

func BenchmarkBinary40MB(b *testing.B) {
	dir := b.TempDir()
	body := randomBytes(b, benchSize)
	b.Run("apply", func(b *testing.B) {
		bin := &Binary{App: "app", Target: filepath.Join(dir, "app"), StateDir: filepath.Join(dir, "state")}
		a := artifact(b, dir, "app", "0", KindBinary, body)
		b.SetBytes(benchSize)
		for b.Loop() {
			benchN++
			a.Version = fmt.Sprint("1.0.", benchN)
			if _, err := bin.Apply(context.Background(), a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			if err := atomicfile.WriteFile(filepath.Join(dir, "raw"), body, 0o755); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-copy", func(b *testing.B) {
		src := filepath.Join(dir, "src")
		os.WriteFile(src, body, 0o600)
		b.SetBytes(benchSize)
		for b.Loop() {
			f, _ := os.Open(src)
			err := atomicfile.Write(filepath.Join(dir, "raw"), 0o755, func(w io.Writer) error {
				_, err := io.Copy(w, f)
				return err
			})
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkArchive40MB1000Files(b *testing.B) {
	dir := b.TempDir()
	files := make([]entry, 1000)
	for i := range files {
		files[i] = entry{name: fmt.Sprintf("d%02d/f%03d", i/50, i), body: string(randomBytes(b, benchSize/1000))}
	}
	for _, kind := range []string{KindTarGz, KindTarZst, KindZip} {
		b.Run("apply-"+kind, func(b *testing.B) {
			s := &Slots{Root: filepath.Join(dir, "srv-"+kind), App: "app", Keep: 2}
			a := artifact(b, dir, "app", "0", kind, archive(b, kind, files))
			b.SetBytes(benchSize)
			for b.Loop() {
				benchN++
				a.Version = fmt.Sprint("1.0.", benchN)
				if _, err := s.Apply(context.Background(), a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	n := 0
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			n++
			i := n
			tmp := filepath.Join(dir, fmt.Sprint("raw-tmp-", i))
			for _, e := range files {
				p := filepath.Join(tmp, e.name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				f, err := os.Create(p)
				if err != nil {
					b.Fatal(err)
				}
				f.Write([]byte(e.body))
				f.Sync()
				f.Close()
			}
			for d := range 20 {
				atomicfile.SyncDir(filepath.Join(tmp, fmt.Sprintf("d%02d", d)))
			}
			atomicfile.SyncDir(tmp)
			if err := atomicfile.Rename(tmp, filepath.Join(dir, fmt.Sprint("raw-", i))); err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(filepath.Join(dir, fmt.Sprint("raw-", i-2))) // keep 2, like the slots
		}
	})
}
