package main

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/client"
)

type updateFlags struct {
	repoURL   string
	mirrors   []string
	root      string
	ca        string
	app       string
	current   string
	out       string
	stateDir  string
	platform  string
	insecureH bool
}

func (e *env) updateCmd() *cobra.Command {
	var fl updateFlags
	cmd := &cobra.Command{
		Use:   "update --repo URL --root root.json --app APP --current V --out DIR",
		Short: "Check for, download and verify the newest release of an application",
		Long: `Refresh the signed metadata from the repository (and --mirror URLs, tried in order), pick the
newest release of APP for this platform above --current, download it, verify its length and hashes
against the signed metadata, and only then put it in --out. Nothing is executed or installed.`,
		Example: `  ferry update --repo https://updates.example.com/ --root ./root.json --app hello --current 1.4.1 --out ./bin
  ferry update --repo https://127.0.0.1:8443/ --root ./repo/root.json --ca ./ca.pem \
      --app hello --current 1.0.0 --out ./bin --state-dir ./state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.update(cmd, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.repoURL, "repo", "", "repository base URL, https (required)")
	f.StringArrayVar(&fl.mirrors, "mirror", nil, "a further mirror URL, tried in order when an earlier one fails (repeatable)")
	f.StringVar(&fl.root, "root", "", "trusted root.json (required)")
	f.StringVar(&fl.ca, "ca", "", "PEM file of the CA that signed the server's certificate (default: system roots)")
	f.StringVar(&fl.app, "app", "", "application name (required)")
	f.StringVar(&fl.current, "current", "", "installed version (default: none installed)")
	f.StringVar(&fl.out, "out", "", "directory to put the verified file in (required)")
	f.StringVar(&fl.stateDir, "state-dir", "", "private directory for trusted metadata and partial downloads (default: user cache dir)")
	f.StringVar(&fl.platform, "platform", "", "os/arch to look for (default: this machine's)")
	f.BoolVar(&fl.insecureH, "insecure-allow-http-loopback", false, "INSECURE: allow plain http:// to a loopback address (tests only)")
	for _, n := range []string{"repo", "root", "app", "out"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func (e *env) update(cmd *cobra.Command, fl updateFlags) error {
	cfg, err := e.clientConfig(fl)
	if err != nil {
		return err
	}
	bar := newBar(e.stderr, "downloading "+fl.app)
	cfg.Progress = bar.update
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	rel, err := c.Check(ctx)
	if err != nil {
		return err // already says "check APP: ..."
	}
	if rel == nil {
		if fl.current == "" {
			return fmt.Errorf("no release of %s for %s", fl.app, platformOr(cfg.Platform))
		}
		fmt.Fprintf(e.stdout, "%s %s is up to date\n", fl.app, fl.current)
		return nil
	}
	if err := os.MkdirAll(fl.out, 0o755); err != nil {
		return err
	}
	path, err := c.Download(ctx, rel, fl.out)
	bar.finish()
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	from := fl.current
	if from == "" {
		from = "(none)"
	}
	fmt.Fprintf(e.stdout, "updated %s %s → %s: %s (sha256 %s)\n",
		rel.App, from, rel.Version, path, short(hex.EncodeToString(rel.Hashes["sha256"])))
	return nil
}

func (e *env) clientConfig(fl updateFlags) (client.Config, error) {
	cfg := client.Config{
		URLs:                      append([]string{fl.repoURL}, fl.mirrors...),
		TrustedRootFile:           fl.root,
		StateDir:                  fl.stateDir,
		App:                       fl.app,
		Platform:                  fl.platform,
		Installed:                 fl.current,
		InsecureAllowHTTPLoopback: fl.insecureH,
	}
	if cfg.StateDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return cfg, withHint(fmt.Errorf("no state directory: %w", err), "pass --state-dir DIR")
		}
		cfg.StateDir = filepath.Join(d, "ferry", fl.app)
	}
	if fl.ca != "" {
		pool, err := loadCA(fl.ca)
		if err != nil {
			return cfg, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// loadCA reads a PEM file of CA certificates into a new pool.
func loadCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", file)
	}
	return pool, nil
}

func platformOr(p string) string {
	if p == "" {
		return "this platform"
	}
	return p
}

// bar draws a download progress bar on a terminal and nothing elsewhere.
type bar struct {
	w    io.Writer
	desc string
	pb   *progressbar.ProgressBar
}

func newBar(w io.Writer, desc string) *bar {
	if !isTerminal(w) {
		return &bar{}
	}
	return &bar{w: w, desc: desc}
}

func (b *bar) update(done, total int64) {
	if b.w == nil {
		return
	}
	if b.pb == nil {
		b.pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	b.pb.Set64(done)
}

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
	}
}
