package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/bench/internal/harness"
	"github.com/ferry-updates/ferry/repo"
)

// setup is the served file and where it is.
type setup struct {
	srv    *harness.Server
	url    string
	size   int64
	sha256 string
	work   string
	root   string // the repository's root.json
}

func run() error {
	sizeFlag := flag.String("size", "1GiB", "size of the target")
	reps := flag.Int("reps", 3, "runs of each client; tables show the median")
	flag.Parse()
	size, err := parseSize(*sizeFlag)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return fmt.Errorf("curl is needed for the comparison: %w", err)
	}
	work, err := os.MkdirTemp("", "ferry-bench-download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	st, err := prepare(work, size)
	if err != nil {
		return err
	}
	defer st.srv.Close()
	// Each run starts with a different client, so that no client always
	// follows the same one (and its page-cache writeback).
	all := map[string][]harness.Result{}
	order := []string{"fetch", "client", "curl"}
	for i := range *reps {
		for j := range order {
			name := order[(i+j)%len(order)]
			logf("run %d of %d: %s", i+1, *reps, name)
			var r harness.Result
			if name == "curl" {
				r, err = st.runCurl()
			} else {
				r, err = st.runChild(context.Background(), name)
			}
			if err != nil {
				return err
			}
			all[name] = append(all[name], r)
		}
	}
	return write(os.Stdout, st, *reps, all)
}

// The published release.
const (
	app      = "big"
	version  = "1.0.0"
	platform = "linux/amd64"
)

var benchPassphrase = []byte("ferry benchmark repository")

// prepare publishes a file of size pseudo-random bytes as a release of a
// new repository in work/repo and serves its public directory.
func prepare(work string, size int64) (*setup, error) {
	src := filepath.Join(work, "src", "big.bin")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		return nil, err
	}
	logf("writing %s of pseudo-random bytes", harness.Size(size))
	sum, err := writeRandom(src, size)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	dir := filepath.Join(work, "repo")
	if err := repo.Init(ctx, dir, repo.InitOptions{Passphrase: benchPassphrase, InsecureScryptWorkFactor: 8}); err != nil {
		return nil, err
	}
	r, err := repo.Open(dir, benchPassphrase)
	if err != nil {
		return nil, err
	}
	logf("publishing it")
	rel := repo.Release{App: app, Version: version, Platform: platform, Kind: "binary"}
	if err := r.Publish(ctx, rel, []string{src}); err != nil {
		return nil, err
	}
	if err := os.Remove(src); err != nil {
		return nil, err
	}
	hexSum := hex.EncodeToString(sum)
	rel2 := "targets/" + app + "/" + version + "/linux-amd64/" + hexSum + ".big.bin"
	public := filepath.Join(dir, "public")
	if _, err := os.Stat(filepath.Join(public, filepath.FromSlash(rel2))); err != nil {
		return nil, fmt.Errorf("published target not where expected: %w", err)
	}
	srv, err := serve(public, filepath.Join(work, "ca.pem"))
	if err != nil {
		return nil, err
	}
	return &setup{srv: srv, url: srv.URL + "/" + rel2, size: size, sha256: hexSum, work: work,
		root: filepath.Join(dir, "root.json")}, nil
}

// runChild measures one download in a child process; its files are
// removed afterwards.
func (st *setup) runChild(ctx context.Context, mode string) (harness.Result, error) {
	out, err := os.MkdirTemp(st.work, mode+"-")
	if err != nil {
		return harness.Result{}, err
	}
	defer os.RemoveAll(out)
	rs, err := harness.Run(ctx, "-mode", mode, "-url", st.url, "-base", st.srv.URL, "-ca", st.srv.CAFile,
		"-root", st.root, "-out", out, "-size", strconv.FormatInt(st.size, 10), "-sha256", st.sha256)
	if err != nil {
		return harness.Result{}, err
	}
	if rs[0].Err != "" {
		return harness.Result{}, fmt.Errorf("ferry %s: %s", mode, rs[0].Err)
	}
	return rs[0], nil
}

// runCurl times the shell pipeline and checks the digest it prints.
func (st *setup) runCurl() (harness.Result, error) {
	before := st.srv.Counts()
	cmd := exec.Command("sh", "-c", `curl --fail --cacert "$1" -s "$2" | sha256sum`, "sh", st.srv.CAFile, st.url)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return harness.Result{}, fmt.Errorf("curl | sha256sum: %w", err)
	}
	if got, _, _ := strings.Cut(out.String(), " "); got != st.sha256 {
		return harness.Result{}, fmt.Errorf("curl | sha256sum: %w: want %s, got %q", errMismatch, st.sha256, got)
	}
	after := st.srv.Counts()
	return harness.Result{Step: "curl", Nanos: int64(d), Bytes: after.Bytes - before.Bytes,
		Requests: after.Requests - before.Requests, Files: after.Files - before.Files}, nil
}
