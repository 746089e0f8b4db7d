// Command download benchmarks ferry's artifact download against curl piped
// into sha256sum, for one large target over HTTPS on 127.0.0.1:
//
//	go run ./bench/download -size 1GiB
//
// It writes a file of pseudo-random bytes into a temporary directory,
// serves that directory with server.Repository over TLS, and then, -reps
// times each, interleaved:
//
//   - ferry: fetch.File in a child process (this program re-executed),
//     streaming to disk while hashing and verifying length and SHA-256, as
//     client.Download does; time and peak RSS (VmHWM) come from the child;
//   - curl: sh -c 'curl --cacert CA -s URL | sha256sum', checked against the
//     expected digest.
//
// The temporary directory (the served file and every download) is removed
// at the end. Markdown goes to stdout, progress to stderr.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferry-updates/ferry/bench/internal/harness"
	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/server"
)

func main() {
	var err error
	if harness.IsChild() {
		err = childMain(os.Args[1:])
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "download: error:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "download: "+format+"\n", args...) }

// parseSize reads "1GiB", "64MiB", "512KiB" or a number of bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 1 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want a positive number with an optional GiB, MiB or KiB suffix", s)
	}
	return n * mult, nil
}

// writeRandom writes size pseudo-random bytes to path and returns their
// SHA-256.
func writeRandom(path string, size int64) ([]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int(min(left, int64(len(buf))))
		rng.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return nil, err
		}
		left -= int64(n)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// serve serves dir with the project's repository handler.
func serve(dir, caFile string) (*harness.Server, error) {
	h, err := server.Repository(dir)
	if err != nil {
		logf("server.Repository: %v; using net/http FileServer", err)
		h = http.FileServer(http.Dir(dir))
	}
	return harness.Serve(h, caFile)
}

// childMain downloads the target in the child, with -mode fetch
// (fetch.File) or client (client.New, Check, Download), and reports it.
func childMain(args []string) error {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	mode := fs.String("mode", "fetch", "")
	url := fs.String("url", "", "")
	base := fs.String("base", "", "")
	ca := fs.String("ca", "", "")
	root := fs.String("root", "", "")
	out := fs.String("out", "", "")
	size := fs.Int64("size", 0, "")
	sum := fs.String("sha256", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pool, err := harness.CAPool(*ca)
	if err != nil {
		return err
	}
	ctx := context.Background()
	hc := harness.HTTPClient(pool)
	before, err := harness.FetchCounts(ctx, hc, *base)
	if err != nil {
		return err
	}
	var r harness.Result
	switch *mode {
	case "fetch":
		r, err = viaFetch(ctx, pool, *url, *out, *size, *sum)
	case "client":
		r, err = viaClient(ctx, pool, *base, *root, *out)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		return err
	}
	after, err := harness.FetchCounts(ctx, hc, *base)
	if err != nil {
		return err
	}
	r.Bytes, r.Requests, r.Files = after.Bytes-before.Bytes, after.Requests-before.Requests, after.Files-before.Files
	return harness.Report(r)
}

func viaFetch(ctx context.Context, pool *x509.CertPool, url, out string, size int64, sum string) (harness.Result, error) {
	digest, err := hex.DecodeString(sum)
	if err != nil {
		return harness.Result{}, err
	}
	f, err := fetch.New(fetch.Options{RootCAs: pool})
	if err != nil {
		return harness.Result{}, err
	}
	want := fetch.Want{Length: size, Hashes: map[string][]byte{"sha256": digest}}
	s := harness.Start("fetch")
	return s.Stop(f.File(ctx, url, filepath.Join(out, "big.bin"), want, nil)), nil
}

// viaClient measures a whole update: client.New, Check, Download into
// out/dl, with the client's state in out/state.
func viaClient(ctx context.Context, pool *x509.CertPool, base, root, out string) (harness.Result, error) {
	s := harness.Start("client")
	c, err := client.New(client.Config{
		URLs: []string{base}, TrustedRootFile: root, StateDir: filepath.Join(out, "state"),
		App: app, Platform: platform, RootCAs: pool,
	})
	if err != nil {
		return s.Stop(err), nil
	}
	rel, err := c.Check(ctx)
	if err == nil && rel == nil {
		err = errors.New("check found no release")
	}
	if err == nil {
		_, err = c.Download(ctx, rel, filepath.Join(out, "dl"))
	}
	return s.Stop(err), nil
}

var errMismatch = errors.New("digest mismatch")
