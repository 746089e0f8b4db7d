// Command custody times "ferry release publish" of a small file, as a user
// runs it, with keys at the default scrypt work factor:
//
//	go run ./bench/custody -reps 5
//
// It builds the ferry command (or uses -ferry PATH), creates a repository
// of the safe layout (ferry init --offline-keys) in a temporary directory,
// publishes a first release, and then, -reps times each, times:
//
//   - local, app key: ferry release publish --repo R --app-key KEY (the
//     application key and the online snapshot and timestamp keys are
//     decrypted);
//   - local, offline keys: the same with --offline-keys DIR instead;
//   - remote: ferry release publish --server URL --app-key KEY against a
//     running ferry serve on 127.0.0.1 (the CI path: only the application
//     key is decrypted on the publisher; the server signs snapshot and
//     timestamp with online keys it opened once);
//   - remote with an application key made at scrypt work factor 10
//     (ferry key generate with FERRY_INSECURE_SCRYPT_WORK_FACTOR=10, for
//     measuring only): the same path without the cost of one scrypt, which
//     shows what the rest of the command costs.
//
// With -baseline PATH, a ferry binary of an older version is timed too, on
// a repository it made (ferry init, every key in the repository): its
// ferry release publish --repo R.
//
// Every run publishes a new version of a 2-byte file. Markdown goes to
// stdout, progress to stderr; the temporary directory is removed at the end.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "custody: error:", err)
		os.Exit(1)
	}
}

type bench struct {
	ferry, dir string
	env        []string
}

func run() error {
	reps := flag.Int("reps", 5, "runs of each case")
	ferry := flag.String("ferry", "", "ferry binary to time (default: build ./cmd/ferry)")
	baseline := flag.String("baseline", "", "an older ferry binary to time on a repository of its own layout")
	flag.Parse()
	dir, err := os.MkdirTemp("", "ferry-bench-publish-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{ferry: *ferry, dir: dir, env: append(os.Environ(), "FERRY_PASSPHRASE=bench passphrase",
		// The pipeline's publisher records (ferry release publish --server)
		// go with this run's repository, not into the user's state.
		"XDG_STATE_HOME="+filepath.Join(dir, "state"))}
	b.env = slices.DeleteFunc(b.env, func(s string) bool { return strings.HasPrefix(s, "FERRY_INSECURE_SCRYPT_WORK_FACTOR=") })
	if b.ferry == "" {
		b.ferry = filepath.Join(dir, "ferry")
		if out, err := exec.Command("go", "build", "-o", b.ferry, "./cmd/ferry").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v: %s", err, out)
		}
	}
	if err := b.setup(); err != nil {
		return err
	}
	stop, url, err := b.serve()
	if err != nil {
		return err
	}
	defer stop()
	cases := []struct {
		name string
		args func(v string) []string
	}{
		{"local, --app-key (app key + online keys decrypted)", func(v string) []string {
			return b.publish(v, "--repo", b.p("repo"), "--app-key", b.p("offline/apps/hello.age"))
		}},
		{"local, --offline-keys", func(v string) []string {
			return b.publish(v, "--repo", b.p("repo"), "--offline-keys", b.p("offline"))
		}},
		{"remote, --server --app-key (CI: app key decrypted here)", func(v string) []string {
			return b.publish(v, "--server", url, "--ca", b.p("ca.pem"), "--token-file", b.p("hello.token"), "--app-key", b.p("offline/apps/hello.age"))
		}},
		{"remote, app key at work factor 10 (all but one scrypt)", func(v string) []string {
			return b.publishApp("fast", v, "--server", url, "--ca", b.p("ca.pem"), "--token-file", b.p("fast.token"), "--app-key", b.p("fast.key"))
		}},
	}
	if *baseline != "" {
		old := &bench{ferry: *baseline, dir: dir, env: b.env}
		for _, args := range [][]string{{"init", b.p("repo-old")}, old.publish("1.0.0", "--repo", b.p("repo-old"))} {
			if _, err := old.time(args...); err != nil {
				return err
			}
		}
		cases = append(cases, struct {
			name string
			args func(v string) []string
		}{"baseline binary, --repo (its layout)", func(v string) []string {
			return append([]string{"BASELINE"}, b.publish(v, "--repo", b.p("repo-old"))...)
		}})
	}
	times := make([][]time.Duration, len(cases))
	n := 0
	for rep := range *reps {
		for i, c := range cases {
			n++
			args, runner := c.args(fmt.Sprintf("2.%d.%d", rep, n)), b
			if args[0] == "BASELINE" {
				args, runner = args[1:], &bench{ferry: *baseline, dir: dir, env: b.env}
			}
			d, err := runner.time(args...)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			times[i] = append(times[i], d)
			fmt.Fprintf(os.Stderr, "custody: %s: %v\n", c.name, d.Round(time.Millisecond))
		}
	}
	fmt.Println("| case | median | min | max | runs |")
	fmt.Println("|---|---|---|---|---|")
	for i, c := range cases {
		ts := slices.Sorted(slices.Values(times[i]))
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f s | %d |\n", c.name, ts[len(ts)/2].Seconds(), ts[0].Seconds(), ts[len(ts)-1].Seconds(), len(ts))
	}
	return nil
}

func (b *bench) p(name string) string { return filepath.Join(b.dir, name) }

func (b *bench) publish(version string, args ...string) []string {
	return b.publishApp("hello", version, args...)
}

func (b *bench) publishApp(app, version string, args ...string) []string {
	return append(append([]string{"release", "publish"}, args...),
		"--app", app, "--version", version, "--platform", "linux/amd64", b.p("hello"))
}

// setup creates the repository, the first release and a publisher token.
func (b *bench) setup() error {
	if err := os.WriteFile(b.p("hello"), []byte("hi"), 0o644); err != nil {
		return err
	}
	steps := [][]string{
		{"init", b.p("repo"), "--offline-keys", b.p("offline")},
		b.publish("1.0.0", "--repo", b.p("repo"), "--offline-keys", b.p("offline")),
	}
	for _, s := range steps {
		if _, err := b.time(s...); err != nil {
			return err
		}
	}
	gen := b.cmd("key", "generate", "--out", b.p("fast.key"))
	gen.Env = append(gen.Env, "FERRY_INSECURE_SCRYPT_WORK_FACTOR=10")
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("key generate: %v: %s", err, out)
	}
	if _, err := b.time(b.publishApp("fast", "1.0.0", "--repo", b.p("repo"), "--offline-keys", b.p("offline"), "--app-key", b.p("fast.key"))...); err != nil {
		return err
	}
	for _, app := range []string{"hello", "fast"} {
		out, err := b.cmd("token", "create", "--repo", b.p("repo"), "--app", app).Output()
		if err != nil {
			return fmt.Errorf("token create: %w", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err := os.WriteFile(b.p(app+".token"), []byte(lines[len(lines)-1]+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// serve starts ferry serve on a free port and returns a stop function and
// its URL, once the URL file is written.
func (b *bench) serve() (func(), string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, b.ferry, "serve", "--repo", b.p("repo"), "--addr", "127.0.0.1:0",
		"--self-signed", b.p("ca.pem"), "--addr-file", b.p("url"))
	cmd.Env = b.env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, "", err
	}
	stop := func() { cancel(); cmd.Wait() }
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if u, err := os.ReadFile(b.p("url")); err == nil && len(bytes.TrimSpace(u)) > 0 {
			return stop, strings.TrimSpace(string(u)), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	return nil, "", fmt.Errorf("ferry serve did not start: %s", errb.String())
}

func (b *bench) cmd(args ...string) *exec.Cmd {
	c := exec.Command(b.ferry, args...)
	c.Env = b.env
	return c
}

// time runs ferry with args and returns its wall time.
func (b *bench) time(args ...string) (time.Duration, error) {
	c := b.cmd(args...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("ferry %s: %v: %s", strings.Join(args, " "), err, out.String())
	}
	return d, nil
}
