package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/repo"
)

// demoWorkFactor is the scrypt work factor of the demo's throw-away keys:
// low, so the demo runs in seconds. Real repositories use the default.
const demoWorkFactor = 10

func (e *env) demoCmd() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole update loop on this machine, in a temporary directory",
		Long: `Create a repository, publish two versions of a small program, serve them over HTTPS on
127.0.0.1 with a generated CA, and update from the first version to the second. Then install the
program and let it update itself in place, publish a broken release whose health check fails and
watch it being rolled back and marked bad, and show that a tampered program and tampered metadata
are both refused. Everything happens in a temporary directory that is removed at the end. Exits
non-zero if any step does not behave as described.`,
		Example: "  ferry demo\n  go run ./cmd/ferry demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			return e.demo(ctx, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory and print where it is")
	return cmd
}

// demo holds the state shared by the steps of "ferry demo".
type demo struct {
	e        *env
	dir      string // temporary directory holding everything
	repoDir  string
	offline  string // the offline keys: outside what is served
	caFile   string
	url      string
	platform string
	pass     []byte // the throw-away keys' passphrase
	sh       string // path of sh, "" if none: the sample program is a shell script
	step     int
	events   *event.Recorder // the events of the clients, for the refusals' evidence
}

func (e *env) demo(ctx context.Context, keep bool) (err error) {
	dir, err := os.MkdirTemp("", "ferry-demo-")
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Fprintf(e.stdout, "\nThe demo's files are kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	d := &demo{
		e: e, dir: dir, repoDir: filepath.Join(dir, "repo"), offline: filepath.Join(dir, "offline-keys"),
		caFile:   filepath.Join(dir, "ca.pem"),
		platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	d.sh, _ = exec.LookPath("sh")
	fmt.Fprintf(e.stdout, "ferry demo: the whole update loop, in %s\n", dir)
	if err := d.publish(ctx); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	served, err := d.serve(ctx)
	if err != nil {
		return err
	}
	steps := []func(context.Context) error{d.update, d.upToDate, d.selfUpdate, d.badRelease, d.tamperArtifact, d.tamperMetadata}
	for _, s := range steps {
		if err := s(ctx); err != nil {
			return fmt.Errorf("demo step %d did not behave as described: %w", d.step, err)
		}
	}
	stop()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("demo server: %w", err)
	}
	if keep {
		d.say("Done. Stopped the server; the temporary directory is kept.")
	} else {
		d.say("Done. Stopped the server and removed the temporary directory.")
	}
	fmt.Fprintln(e.stdout, "\nEvery step behaved as described. Next: ferry --help, or ferry init to start a real repository.")
	return nil
}

// say starts a new numbered step.
func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.e.stdout, "\nStep %d. %s\n", d.step, fmt.Sprintf(format, args...))
}

// note prints an indented detail line of the current step.
func (d *demo) note(format string, args ...any) {
	fmt.Fprintf(d.e.stdout, "   %s\n", fmt.Sprintf(format, args...))
}

// publish creates the repository and publishes hello 1.0.0 and 1.1.0.
func (d *demo) publish(ctx context.Context) error {
	pass := make([]byte, 16)
	rand.Read(pass)
	pass = []byte(hex.EncodeToString(pass))
	d.pass = pass
	d.say("Create a signed repository: a root key, and keys for the targets, snapshot and timestamp roles.")
	err := repo.Init(ctx, d.repoDir, repo.InitOptions{Passphrase: pass, OfflineKeys: d.offline, InsecureScryptWorkFactor: demoWorkFactor})
	if err != nil {
		return err
	}
	d.note("the offline keys (root, targets, and each app's key) are in %s, outside what is served;", d.offline)
	d.note("%s holds only the online keys (snapshot, timestamp, rollout) that the server re-signs with.", filepath.Join(d.repoDir, "keys"))
	d.note("keys are encrypted with a random passphrase; the demo uses a low scrypt work factor (%d)", demoWorkFactor)
	d.note("so it runs fast: a real repository uses the default, and more than one root key.")
	d.note("%s is the trust anchor a client ships with.", filepath.Join(d.repoDir, "root.json"))

	d.say("Publish two versions of a tiny program \"hello\" (a shell script) for %s.", d.platform)
	r, err := d.openRepo()
	if err != nil {
		return err
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := d.publishHello(ctx, r, v, "exit 0"); err != nil {
			return err
		}
		d.note("published hello %s, signed with the key of the app's own role \"hello\"", v)
	}
	return nil
}

// openRepo opens the repository as its publisher, with the offline keys.
func (d *demo) openRepo() (*repo.Repo, error) {
	return repo.OpenWith(d.repoDir, repo.Options{Passphrase: repo.Passphrase(d.pass), OfflineKeys: d.offline})
}

// publishHello builds hello version v, a shell script that with --health
// runs health, and publishes it.
func (d *demo) publishHello(ctx context.Context, r *repo.Repo, v, health string) error {
	src := filepath.Join(d.dir, "build", v, "hello")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		return err
	}
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --health ]; then %s; fi\necho \"hello %s\"\n", health, v)
	if err := os.WriteFile(src, []byte(script), 0o755); err != nil {
		return err
	}
	rel := repo.Release{App: "hello", Version: v, Platform: d.platform, Kind: "binary"}
	return r.Publish(ctx, rel, []string{src})
}

// serve starts the HTTPS server in the background; the returned channel
// yields its result once ctx is cancelled.
func (d *demo) serve(ctx context.Context) (<-chan error, error) {
	d.say("Serve the repository over HTTPS on 127.0.0.1, with a certificate from a CA made just now.")
	tlsCfg, err := selfSignedTLS([]string{"127.0.0.1"}, d.caFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d.url = "https://" + ln.Addr().String() + "/"
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, ln, filepath.Join(d.repoDir, "public"), nil, tlsCfg, nil) }()
	d.note("serving on %s; clients trust the CA in %s", d.url, d.caFile)
	return done, nil
}

// newClient returns a client with a fresh state directory, as a newly
// installed copy of hello at version installed would have.
func (d *demo) newClient(installed string) (*client.Client, error) {
	pool, err := loadCA(d.caFile)
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp(d.dir, "state-")
	if err != nil {
		return nil, err
	}
	d.events = &event.Recorder{}
	return client.New(client.Config{
		URLs:            []string{d.url},
		TrustedRootFile: filepath.Join(d.repoDir, "root.json"),
		StateDir:        state,
		App:             "hello",
		Platform:        d.platform,
		Installed:       installed,
		RootCAs:         pool,
		Events:          event.Tee(d.events, event.Slog(d.e.logger())),
	})
}

// check refreshes a fresh client at version installed and returns the
// release it offers.
func (d *demo) check(ctx context.Context, installed string) (*client.Client, *client.Release, error) {
	c, err := d.newClient(installed)
	if err != nil {
		return nil, nil, err
	}
	rel, err := c.Check(ctx)
	return c, rel, err
}

// update runs the client from 1.0.0 to 1.1.0 and runs the result.
func (d *demo) update(ctx context.Context) error {
	d.say("A client that has hello 1.0.0 checks for updates, downloads and verifies the new version.")
	c, rel, err := d.check(ctx, "1.0.0")
	if err != nil {
		return err
	}
	if rel == nil || rel.Version != "1.1.0" {
		return fmt.Errorf("want release 1.1.0 offered, got %+v", rel)
	}
	d.note("signed metadata checked (timestamp → snapshot → targets → hello): 1.1.0 is available")
	out := filepath.Join(d.dir, "installed")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	p, err := c.Download(ctx, rel, out)
	if err != nil {
		return err
	}
	d.note("downloaded %s; length and sha256 %s… match the signed metadata", p, hex.EncodeToString(rel.Hashes["sha256"])[:12])
	got, err := runScript(ctx, p)
	if err != nil {
		return err
	}
	if got != "" && got != "hello 1.1.0" {
		return fmt.Errorf("updated program printed %q, want %q", got, "hello 1.1.0")
	}
	if got != "" {
		d.note("running it prints: %s", got)
	}
	return nil
}

// upToDate shows that a client at the newest version is offered nothing.
func (d *demo) upToDate(ctx context.Context) error {
	d.say("A client that already has hello 1.1.0 checks again: nothing newer, nothing downloaded.")
	_, rel, err := d.check(ctx, "1.1.0")
	if err != nil {
		return err
	}
	if rel != nil {
		return fmt.Errorf("want no release offered, got %s", rel.Version)
	}
	d.note("hello 1.1.0 is up to date")
	return nil
}

// runScript runs the shell script at p and returns its trimmed output, or
// "" where no /bin/sh exists.
func runScript(ctx context.Context, p string) (string, error) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return "", nil
	}
	out, err := exec.CommandContext(ctx, sh, p).Output()
	if err != nil {
		return "", fmt.Errorf("run %s: %w", p, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// tamperArtifact flips one byte of the served 1.1.0 program (same length)
// and shows that a client refuses it.
func (d *demo) tamperArtifact(ctx context.Context) error {
	c, rel, err := d.check(ctx, "1.0.0")
	if err != nil {
		return err
	}
	if rel == nil {
		return errors.New("no release offered")
	}
	d.say("An attacker who controls the server flips one byte of hello %s (same length).", rel.Version)
	served := filepath.Join(d.repoDir, "public", "targets", path.Dir(rel.Path),
		hex.EncodeToString(rel.Hashes["sha256"])+"."+path.Base(rel.Path))
	restore, err := flipByte(served, func(b []byte) int { return len(b) / 2 })
	if err != nil {
		return err
	}
	defer restore()
	out := filepath.Join(d.dir, "tampered")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if _, err := c.Download(ctx, rel, out); err == nil {
		return errors.New("the tampered program was accepted")
	} else {
		d.note("refused: %v", err)
	}
	if _, ok := d.refusal(event.DownloadRejected); !ok {
		return errors.New("the refused download was not reported as a download.rejected event")
	}
	d.note("the bytes do not hash to the sha256 that the hello role signed, so the client threw them away.")
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		return fmt.Errorf("%d file(s) left in %s after a refused download", len(ents), out)
	}
	d.note("nothing was written to %s", out)
	return restore()
}

var sigRE = regexp.MustCompile(`"sig"\s*:\s*"`)

// tamperMetadata flips one hex digit of timestamp.json's signature and
// shows that a client refuses the metadata.
func (d *demo) tamperMetadata(ctx context.Context) error {
	d.say("The attacker flips one character of the signature in timestamp.json.")
	ts := filepath.Join(d.repoDir, "public", "metadata", "timestamp.json")
	restore, err := flipByte(ts, func(b []byte) int {
		if loc := sigRE.FindIndex(b); loc != nil {
			return loc[1]
		}
		return -1
	})
	if err != nil {
		return err
	}
	defer restore()
	if _, rel, err := d.check(ctx, "1.0.0"); err == nil {
		return fmt.Errorf("tampered metadata was accepted (offered %v)", rel)
	} else {
		d.note("refused: %v", err)
	}
	ev, ok := d.refusal(event.MetadataRejected)
	if !ok || ev.Evidence["role"] != "timestamp" || ev.Evidence["reason"] != "bad_signature" {
		return fmt.Errorf("the refused metadata was not reported as a bad timestamp signature: %+v", ev)
	}
	d.note("the signature no longer verifies with the timestamp key listed in the trusted root,")
	d.note("so the client trusts nothing new and downloads nothing.")
	return restore()
}

// refusal returns the last event of kind k that the last client reported.
func (d *demo) refusal(k event.Kind) (event.Event, bool) {
	evs := d.events.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == k {
			return evs[i], true
		}
	}
	return event.Event{}, false
}

// flipByte changes the byte at the offset that at chooses (a hex digit
// stays a hex digit) and returns a function that restores the file.
func flipByte(p string, at func([]byte) int) (func() error, error) {
	orig, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	i := at(orig)
	if i < 0 || i >= len(orig) {
		return nil, fmt.Errorf("nothing to tamper with in %s", p)
	}
	b := bytes.Clone(orig)
	if b[i] == '0' {
		b[i] = '1'
	} else if isHex(b[i]) {
		b[i] = '0'
	} else {
		b[i] ^= 0x01
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return nil, err
	}
	done := false
	return func() error {
		if done {
			return nil
		}
		done = true
		return os.WriteFile(p, orig, 0o644)
	}, nil
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
