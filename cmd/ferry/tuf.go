package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/internal/safefile"
	"github.com/ferry-updates/ferry/trust"
)

// tufFlags are shared by the tuf subcommands, in the shape that TUF
// conformance tools drive.
type tufFlags struct {
	metadataURL   string
	metadataDir   string
	targetNames   []string
	targetDir     string
	targetBaseURL string
	ca            string
	refTime       int64
	insecureH     bool
}

const tufExamples = `  ferry tuf init --metadata-dir ./md ./root.json
  ferry tuf refresh --metadata-dir ./md --metadata-url https://127.0.0.1:8443/metadata/ --ca ./ca.pem
  ferry tuf download --metadata-dir ./md --metadata-url https://127.0.0.1:8443/metadata/ --ca ./ca.pem \
      --target-base-url https://127.0.0.1:8443/targets/ --target-dir ./t \
      --target-name hello/1.0.0/linux-amd64/hello`

func (e *env) tufCmd() *cobra.Command {
	var fl tufFlags
	cmd := &cobra.Command{
		Use:   "tuf",
		Short: "A low-level TUF client (for interoperability testing)",
		Long: `A plain TUF client: "init" installs a trusted root, "refresh" runs the TUF client workflow,
"download" refreshes and then fetches and verifies --target-name targets in order, stopping at the
first failure. Trusted metadata lives in --metadata-dir (a directory that group and others may not
write) as root.json, N.root.json for each root reached by rotation, timestamp.json, snapshot.json,
targets.json and ROLE.json (names encoded so that none can leave the directory or share a file with
another where case is folded). Targets are saved in
--target-dir under their encoded path (hello%2F1.0.0%2Flinux-amd64%2Fhello). Exit status 0 on
success, 1 on any failure.`,
		Example: tufExamples,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&fl.metadataDir, "metadata-dir", "", "directory of trusted metadata (required)")
	pf.StringVar(&fl.metadataURL, "metadata-url", "", "base URL of the repository's metadata")
	pf.StringArrayVar(&fl.targetNames, "target-name", nil, "target path to download (repeatable, handled in order)")
	pf.StringVar(&fl.targetDir, "target-dir", "", "directory to save targets in")
	pf.StringVar(&fl.targetBaseURL, "target-base-url", "", "base URL of the repository's targets")
	pf.StringVar(&fl.ca, "ca", "", "PEM file of the CA that signed the server's certificate (default: system roots)")
	pf.Int64Var(&fl.refTime, "unsafe-reference-time", 0, "UNSAFE: judge expiry at this time (Unix seconds) instead of now")
	pf.BoolVar(&fl.insecureH, "insecure-allow-http-loopback", false, "INSECURE: allow plain http:// to a loopback address (tests only)")
	cmd.MarkPersistentFlagRequired("metadata-dir")
	cmd.AddCommand(
		&cobra.Command{
			Use: "init ROOT_FILE", Short: "Verify a self-signed root and install it as the trusted root",
			Example: "  ferry tuf init --metadata-dir ./md ./root.json",
			Args:    cobra.ExactArgs(1),
			RunE:    func(cmd *cobra.Command, args []string) error { return e.tufInit(fl, args[0]) },
		},
		&cobra.Command{
			Use: "refresh", Short: "Refresh trusted metadata from --metadata-url",
			Example: "  ferry tuf refresh --metadata-dir ./md --metadata-url https://127.0.0.1:8443/metadata/ --ca ./ca.pem",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				_, _, err := e.tufRefresh(cmd.Context(), fl)
				return err
			},
		},
		&cobra.Command{
			Use: "download", Short: "Refresh, then download and verify --target-name targets",
			Example: tufExamples,
			Args:    cobra.NoArgs,
			RunE:    func(cmd *cobra.Command, args []string) error { return e.tufDownload(cmd.Context(), fl) },
		},
	)
	return cmd
}

// tufInit verifies that rootFile is a root signed by its own threshold of
// its own keys and stores it as metadata-dir/root.json.
func (e *env) tufInit(fl tufFlags, rootFile string) error {
	data, err := checkRootFile(rootFile)
	if err != nil {
		return err
	}
	if err := verifySelfSigned(data); err != nil {
		return fmt.Errorf("root %s: %w", rootFile, err)
	}
	store := metastore.Dir(fl.metadataDir)
	if err := store.Save("root", data); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "trusted root installed in %s\n", fl.metadataDir)
	return nil
}

// verifySelfSigned checks data the way the refresh will: trust.New accepts
// a root only if it is signed by its own threshold of its own usable keys.
// An empty in-memory store keeps anything cached out of the decision.
func verifySelfSigned(data []byte) error {
	_, err := trust.New(trust.Config{Root: data, Store: emptyStore{}})
	return err
}

// emptyStore is a trust.Store that holds nothing and keeps nothing.
type emptyStore struct{}

func (emptyStore) Load(string) ([]byte, error) { return nil, fs.ErrNotExist }
func (emptyStore) Save(string, []byte) error   { return nil }

// tufRefresh runs the TUF client workflow and returns the client and the
// source it used.
func (e *env) tufRefresh(ctx context.Context, fl tufFlags) (*trust.Client, *client.MetadataSource, error) {
	if fl.metadataURL == "" {
		return nil, nil, errors.New("--metadata-url is required")
	}
	f, err := newFetcher(fl.ca, fl.insecureH)
	if err != nil {
		return nil, nil, err
	}
	src, err := newHTTPSource(f, fl.metadataURL, fl.insecureH)
	if err != nil {
		return nil, nil, err
	}
	// Trusted storage: refuse a directory someone else could have planted
	// metadata in (R70).
	if err := safefile.CheckOwnDir(fl.metadataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("--metadata-dir: %w", err)
	}
	store := metastore.Dir(fl.metadataDir)
	root, err := store.Load("root")
	if err != nil {
		return nil, nil, withHint(fmt.Errorf("no trusted root in %s: %w", fl.metadataDir, err),
			"run ferry tuf init --metadata-dir "+fl.metadataDir+" ROOT_FILE first")
	}
	cfg := trust.Config{Root: root, Store: store, Events: event.Slog(e.logger())}
	if fl.refTime != 0 {
		t := time.Unix(fl.refTime, 0)
		cfg.Now = func() time.Time { return t }
	}
	c, err := trust.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Refresh(ctx, src); err != nil {
		return nil, nil, err // already says "trust: refresh: ..."
	}
	return c, src, nil
}

// newFetcher builds the HTTPS fetcher, trusting caFile's CAs if given.
func newFetcher(caFile string, insecureHTTP bool) (*fetch.Fetcher, error) {
	opts := fetch.Options{InsecureAllowHTTPLoopback: insecureHTTP, UserAgent: "ferry"}
	if caFile != "" {
		pool, err := loadCA(caFile)
		if err != nil {
			return nil, err
		}
		opts.RootCAs = pool
	}
	return fetch.New(opts)
}

func newHTTPSource(f *fetch.Fetcher, base string, insecureHTTP bool) (*client.MetadataSource, error) {
	if err := fetch.CheckURL(base, insecureHTTP); err != nil {
		return nil, fmt.Errorf("--metadata-url: %w", err)
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &client.MetadataSource{URL: base, Fetcher: f, InsecureAllowHTTPLoopback: insecureHTTP}, nil
}

// tufDownload refreshes, then fetches each target in order.
func (e *env) tufDownload(ctx context.Context, fl tufFlags) error {
	if len(fl.targetNames) == 0 || fl.targetDir == "" || fl.targetBaseURL == "" {
		return errors.New("download needs --target-name, --target-dir and --target-base-url")
	}
	if err := fetch.CheckURL(fl.targetBaseURL, fl.insecureH); err != nil {
		return fmt.Errorf("--target-base-url: %w", err)
	}
	c, src, err := e.tufRefresh(ctx, fl)
	if err != nil {
		return err
	}
	consistent, err := consistentSnapshot(fl.metadataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(fl.targetDir, 0o755); err != nil {
		return err
	}
	for _, name := range fl.targetNames {
		tf, err := c.Target(ctx, src, name)
		if err != nil {
			return err // names the target already
		}
		path, fetched, err := downloadTarget(ctx, src.Fetcher, fl.targetBaseURL, fl.targetDir, name, tf, consistent)
		if err != nil {
			return err
		}
		verb := "downloaded"
		if !fetched {
			verb = "already present"
		}
		fmt.Fprintf(e.stdout, "%s %s: %s\n", verb, name, path)
	}
	return nil
}

// consistentSnapshot reports whether the trusted root in dir asks for
// consistent snapshots (hash-prefixed target file names).
func consistentSnapshot(dir string) (bool, error) {
	b, err := metastore.Dir(dir).Load("root")
	if err != nil {
		return false, err
	}
	md, err := metadata.Root().FromBytes(b)
	if err != nil {
		return false, fmt.Errorf("trusted root: %w", err)
	}
	return md.Signed.ConsistentSnapshot, nil
}

// downloadTarget saves the target described by tf in dir under its encoded
// name unless a file with matching length and hashes is already there. It
// reports the path and whether it fetched anything.
func downloadTarget(ctx context.Context, f *fetch.Fetcher, baseURL, dir, name string, tf *metadata.TargetFiles, consistent bool) (string, bool, error) {
	local, err := targetFileName(name)
	if err != nil {
		return "", false, err
	}
	want, err := wantOf(tf)
	if err != nil {
		return "", false, fmt.Errorf("target %q: %w", name, err)
	}
	final := filepath.Join(dir, local)
	if ok, err := matches(final, want); err != nil {
		return "", false, err
	} else if ok {
		return final, false, nil
	}
	u, err := targetURL(baseURL, name, want, consistent)
	if err != nil {
		return "", false, fmt.Errorf("target %q: %w", name, err)
	}
	partial := filepath.Join(dir, "."+local+".part")
	_, statErr := os.Lstat(partial)
	err = f.File(ctx, u, partial, want, nil)
	if errors.Is(err, fetch.ErrMismatch) && statErr == nil {
		// The bytes left by an earlier run were bad; File removed them.
		// Fetch once more from the start rather than fail on stale bytes.
		err = f.File(ctx, u, partial, want, nil)
	}
	if err != nil {
		return "", false, fmt.Errorf("target %q: %w", name, err)
	}
	if err := atomicfile.Rename(partial, final); err != nil {
		return "", false, err
	}
	return final, true, nil
}
