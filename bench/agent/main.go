// Command agent measures what an idle ferry agent costs: one agent
// process managing -apps applications of one repository, served by a real
// ferry serve over HTTPS on 127.0.0.1, on a short interval:
//
//	go run ./bench/agent -apps 10 -cycles 30 -interval 1s
//
// It builds the ferry command (or uses -ferry PATH), makes a repository
// (cheap scrypt work factor: the keys' cost is not measured here),
// publishes 1.0.0 of each application, starts ferry serve with its access
// log in a file, and starts ferry agent with one [[app]] per application.
// Once every application is installed and one more cycle has passed,
// nothing changes any more; it then counts, over -cycles cycles, every
// request the server logs (by file), and samples the agent's CPU time
// (utime+stime, /proc/PID/stat) and resident memory (VmRSS and VmHWM,
// /proc/PID/status) at the start and end. A cycle is one request for
// timestamp.json: the agent refreshes its one repository once per cycle.
//
// Markdown goes to stdout, progress to stderr; the temporary directory is
// removed at the end. Linux only (it reads /proc).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agent bench: error:", err)
		os.Exit(1)
	}
}

type bench struct {
	ferry, dir string
	env        []string
	apps       int
	interval   time.Duration
}

func run() error {
	apps := flag.Int("apps", 10, "applications the agent manages, all from one repository")
	cycles := flag.Int("cycles", 30, "idle cycles to measure")
	interval := flag.Duration("interval", time.Second, "the agent's check interval")
	ferry := flag.String("ferry", "", "ferry binary (default: build ./cmd/ferry)")
	flag.Parse()
	if runtime.GOOS != "linux" {
		return errors.New("reads /proc: Linux only")
	}
	dir, err := os.MkdirTemp("", "ferry-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{ferry: *ferry, dir: dir, apps: *apps, interval: *interval,
		env: append(os.Environ(), "FERRY_PASSPHRASE=bench passphrase", "FERRY_INSECURE_SCRYPT_WORK_FACTOR=10")}
	if b.ferry == "" {
		b.ferry = filepath.Join(dir, "ferry")
		if out, err := exec.Command("go", "build", "-o", b.ferry, "./cmd/ferry").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v: %s", err, out)
		}
	}
	if err := b.setup(); err != nil {
		return err
	}
	srv, url, err := b.serve()
	if err != nil {
		return err
	}
	defer stop(srv)
	m, err := b.measure(url, *cycles)
	if err != nil {
		return err
	}
	m.print(os.Stdout, b)
	return nil
}

func (b *bench) p(name ...string) string { return filepath.Join(append([]string{b.dir}, name...)...) }

func (b *bench) ferryCmd(args ...string) *exec.Cmd {
	c := exec.Command(b.ferry, args...)
	c.Dir, c.Env = b.dir, b.env
	return c
}

func (b *bench) run(args ...string) error {
	out, err := b.ferryCmd(args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ferry %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func appName(i int) string { return fmt.Sprintf("app%02d", i) }

// setup makes the repository and publishes 1.0.0 of every application.
func (b *bench) setup() error {
	if err := b.run("init", b.p("repo")); err != nil {
		return err
	}
	plat := runtime.GOOS + "/" + runtime.GOARCH
	for i := range b.apps {
		app := appName(i)
		src := b.p("dist", app)
		if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(src, []byte("#!/bin/sh\necho "+app+" 1.0.0\n"), 0o755); err != nil {
			return err
		}
		if err := b.run("release", "publish", "--repo", b.p("repo"), "--app", app, "--version", "1.0.0", "--platform", plat, src); err != nil {
			return err
		}
	}
	return nil
}

// serve starts ferry serve with its access log in a file and returns its URL.
func (b *bench) serve() (*exec.Cmd, string, error) {
	c := b.ferryCmd("serve", "--repo", b.p("repo"), "--addr", "127.0.0.1:0", "--self-signed", b.p("ca.pem"),
		"--access-log", b.p("access.log"))
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := c.Start(); err != nil {
		return nil, "", err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "serving "); ok {
			_, u, _ := strings.Cut(rest, " on ")
			u, _, _ = strings.Cut(u, " ")
			go io.Copy(io.Discard, out)
			return c, u, nil
		}
	}
	stop(c)
	return nil, "", errors.New("ferry serve printed no URL")
}

func stop(c *exec.Cmd) {
	c.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		<-done
	}
}

// config writes the agent's configuration: every application from the
// one repository, installed as an executable under bin/.
func (b *bench) config(url string) (string, error) {
	var s strings.Builder
	fmt.Fprintf(&s, "state_dir = %q\ninterval = %q\n", b.p("state"), b.interval.String())
	for i := range b.apps {
		app := appName(i)
		fmt.Fprintf(&s, "\n[[app]]\nname = %q\nurls = [%q]\ntrusted_root = %q\nca = %q\n[app.install]\nstrategy = \"binary\"\ntarget = %q\n",
			app, url, b.p("repo", "root.json"), b.p("ca.pem"), b.p("bin", app))
	}
	if err := os.MkdirAll(b.p("bin"), 0o755); err != nil {
		return "", err
	}
	f := b.p("agent.toml")
	return f, os.WriteFile(f, []byte(s.String()), 0o644)
}

// logLine is one line of ferry serve's access log.
type logLine struct {
	Path   string `json:"path"`
	Status int    `json:"status"`
	Bytes  int64  `json:"bytes"`
}

// requests reads the access log from byte offset off: the requests and
// the offset of its end.
func (b *bench) requests(off int64) ([]logLine, int64, error) {
	data, err := os.ReadFile(b.p("access.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, err
	}
	if int64(len(data)) < off {
		return nil, 0, errors.New("access log shrank")
	}
	data = data[off:]
	end := bytes.LastIndexByte(data, '\n') + 1
	var out []logLine
	for _, l := range bytes.Split(data[:end], []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var ll logLine
		if err := json.Unmarshal(l, &ll); err != nil {
			return nil, 0, fmt.Errorf("access log line %q: %w", l, err)
		}
		out = append(out, ll)
	}
	return out, off + int64(end), nil
}

// timestamps counts requests for timestamp.json.
func timestamps(ls []logLine) int {
	n := 0
	for _, l := range ls {
		if strings.HasSuffix(l.Path, "/timestamp.json") {
			n++
		}
	}
	return n
}

// waitCycles waits until the access log from off holds n more requests
// for timestamp.json (or the agent exits), and returns them.
func (b *bench) waitCycles(agent *exec.Cmd, exited <-chan struct{}, off int64, n int) ([]logLine, int64, error) {
	var all []logLine
	deadline := time.Now().Add(time.Duration(n+5) * 3 * b.interval)
	for {
		ls, next, err := b.requests(off)
		if err != nil {
			return nil, 0, err
		}
		all, off = append(all, ls...), next
		if timestamps(all) >= n {
			return all, off, nil
		}
		select {
		case <-exited:
			return nil, 0, fmt.Errorf("ferry agent exited: %v", agent.ProcessState)
		case <-time.After(b.interval / 10):
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("%d cycles took longer than %v", n, time.Duration(n+5)*3*b.interval)
		}
	}
}

// sample is the agent's CPU time and memory at one moment.
type sample struct {
	cpu       time.Duration
	rss, hwm  int64 // bytes
	wallclock time.Time
}

func sampleProc(pid int) (sample, error) {
	s := sample{wallclock: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which is in parentheses): utime is
	// field 14 and stime 15 of the whole line, in clock ticks (100 Hz).
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	f := strings.Fields(string(rest))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(l, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.rss = kb << 10
		case "VmHWM":
			s.hwm = kb << 10
		}
	}
	return s, nil
}

// measurement is what one run measured.
type measurement struct {
	cycles        int
	byPath        map[string]int // request counts by file, statuses folded in
	bytesServed   int64
	first, last   sample
	installCycles int
}

func (b *bench) measure(url string, cycles int) (*measurement, error) {
	cfg, err := b.config(url)
	if err != nil {
		return nil, err
	}
	agent := b.ferryCmd("agent", "--config", cfg)
	var stderr bytes.Buffer
	agent.Stdout, agent.Stderr = io.Discard, &stderr
	if err := agent.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { agent.Wait(); close(exited) }()
	defer func() {
		agent.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			agent.Process.Kill()
			<-exited
		}
	}()
	// Warm up: every application installed, then one more whole cycle.
	var off int64
	m := &measurement{cycles: cycles, byPath: map[string]int{}}
	for !b.allInstalled() {
		var err error
		if _, off, err = b.waitCycles(agent, exited, off, 1); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, stderr.String())
		}
		m.installCycles++
	}
	if _, off, err = b.waitCycles(agent, exited, off, 2); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, stderr.String())
	}
	fmt.Fprintf(os.Stderr, "agent bench: %d applications installed within %d cycles; measuring %d idle cycles\n", b.apps, m.installCycles, cycles)
	if m.first, err = sampleProc(agent.Process.Pid); err != nil {
		return nil, err
	}
	ls, _, err := b.waitCycles(agent, exited, off, cycles)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, stderr.String())
	}
	if m.last, err = sampleProc(agent.Process.Pid); err != nil {
		return nil, err
	}
	m.cycles = timestamps(ls)
	for _, l := range ls {
		m.byPath[fmt.Sprintf("%s (%d)", fileKind(l.Path), l.Status)]++
		m.bytesServed += l.Bytes
	}
	return m, nil
}

// fileKind names a served path without its version: N.root.json for any
// root, targets/... for a target file.
func fileKind(p string) string {
	base := p[strings.LastIndexByte(p, '/')+1:]
	if strings.HasPrefix(p, "/targets/") {
		return "a target file"
	}
	if i := strings.IndexByte(base, '.'); i > 0 {
		if _, err := strconv.Atoi(base[:i]); err == nil {
			return "N." + base[i+1:]
		}
	}
	return base
}

func (b *bench) allInstalled() bool {
	for i := range b.apps {
		if _, err := os.Stat(b.p("bin", appName(i))); err != nil {
			return false
		}
	}
	return true
}

func (m *measurement) print(w io.Writer, b *bench) {
	fmt.Fprintf(w, "One ferry agent, %d applications from one repository, interval %v; %d idle cycles measured after every application was installed.\n\n",
		b.apps, b.interval, m.cycles)
	fmt.Fprintln(w, "| served during the idle cycles | requests | per cycle |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, k := range slices.Sorted(maps.Keys(m.byPath)) {
		fmt.Fprintf(w, "| %s | %d | %.2f |\n", k, m.byPath[k], float64(m.byPath[k])/float64(m.cycles))
	}
	fmt.Fprintf(w, "\nBytes served: %d in all, %.0f per cycle.\n\n", m.bytesServed, float64(m.bytesServed)/float64(m.cycles))
	cpu := m.last.cpu - m.first.cpu
	wall := m.last.wallclock.Sub(m.first.wallclock)
	fmt.Fprintln(w, "| agent process | value |")
	fmt.Fprintln(w, "|---|---:|")
	fmt.Fprintf(w, "| CPU time per cycle (utime+stime, 10 ms ticks) | %.1f ms |\n", float64(cpu.Microseconds())/1000/float64(m.cycles))
	fmt.Fprintf(w, "| CPU share over the idle period | %.2f %% of one core |\n", 100*cpu.Seconds()/wall.Seconds())
	fmt.Fprintf(w, "| resident memory (VmRSS) at the start / end of the idle cycles | %.1f / %.1f MiB |\n", mib(m.first.rss), mib(m.last.rss))
	fmt.Fprintf(w, "| peak resident memory since start (VmHWM) | %.1f MiB |\n", mib(m.last.hwm))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
