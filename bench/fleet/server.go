package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to make and drop the server's schema
)

// bench is one database's run: the repository, the server and its files.
type bench struct {
	c      config
	db     string // "sqlite" or "postgres"
	dir    string
	dbLoc  string // the server's --db
	env    []string
	url    string
	ca     []byte
	srv    *exec.Cmd
	exited chan struct{}
	stderr io.Writer
}

func (b *bench) p(name ...string) string { return filepath.Join(append([]string{b.dir}, name...)...) }

func (b *bench) ferry(args ...string) ([]byte, error) {
	c := exec.Command(b.c.ferry, args...)
	c.Dir, c.Env = b.dir, b.env
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return nil, fmt.Errorf("ferry %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// setup makes the repository, publishes hello 1.0.0 and chooses the database.
func (b *bench) setup(ctx context.Context) (cleanup func(), err error) {
	b.env = append(os.Environ(), "FERRY_PASSPHRASE=bench passphrase", "FERRY_INSECURE_SCRYPT_WORK_FACTOR=10")
	if _, err := b.ferry("init", b.p("repo")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(b.p("hello"), []byte("#!/bin/sh\necho hello 1.0.0\n"), 0o755); err != nil {
		return nil, err
	}
	plat := runtime.GOOS + "/" + runtime.GOARCH
	if _, err := b.ferry("release", "publish", "--repo", b.p("repo"), "--app", "hello", "--version", "1.0.0", "--platform", plat, b.p("hello")); err != nil {
		return nil, err
	}
	if b.db == "sqlite" {
		b.dbLoc = b.p("repo", "ferry.db")
		return func() {}, nil
	}
	return b.pgSchema(ctx)
}

// pgSchema makes a new schema in the PostgreSQL server for this run and
// points the server's --db at it; cleanup drops it.
func (b *bench) pgSchema(ctx context.Context) (func(), error) {
	admin, err := sql.Open("pgx", b.c.postgres)
	if err != nil {
		return nil, err
	}
	var raw [8]byte
	rand.Read(raw[:])
	schema := "ferry_fleet_" + hex.EncodeToString(raw[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create schema in FERRY_TEST_POSTGRES: %w", err)
	}
	u, err := url.Parse(b.c.postgres)
	if err != nil {
		admin.Close()
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	b.dbLoc = u.String()
	return func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			fmt.Fprintf(b.stderr, "fleet bench: drop schema %s: %v\n", schema, err)
		}
		admin.Close()
	}, nil
}

// tokens creates enough enrollment tokens for n installations, perToken uses each.
func (b *bench) tokens(n int) ([]string, error) {
	var out []string
	for left := n; left > 0; left -= b.c.perToken {
		uses := min(left, b.c.perToken)
		secret, err := b.ferry("token", "create", "--repo", b.p("repo"), "--db", b.dbLoc, "--enroll", "--app", "hello",
			"--expires", "2h", "--uses", strconv.Itoa(uses))
		if err != nil {
			return nil, err
		}
		out = append(out, strings.TrimSpace(string(secret)))
	}
	return out, nil
}

// start starts ferry serve: access log in a file, its own log (stderr) in
// another, and waits for its URL.
func (b *bench) start() error {
	errLog, err := os.Create(b.p("server.log"))
	if err != nil {
		return err
	}
	c := exec.Command(b.c.ferry, "serve", "--repo", b.p("repo"), "--db", b.dbLoc, "--addr", "127.0.0.1:0",
		"--self-signed", b.p("ca.pem"), "--addr-file", b.p("url.txt"), "--access-log", b.p("access.log"))
	c.Dir, c.Env, c.Stdout, c.Stderr = b.dir, b.env, io.Discard, errLog
	if err := c.Start(); err != nil {
		errLog.Close()
		return err
	}
	b.srv, b.exited = c, make(chan struct{})
	go func() { c.Wait(); errLog.Close(); close(b.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if u, err := os.ReadFile(b.p("url.txt")); err == nil && len(u) > 0 {
			b.url = strings.TrimSpace(string(u))
			break
		}
		select {
		case <-b.exited:
			log, _ := os.ReadFile(b.p("server.log"))
			return fmt.Errorf("ferry serve exited: %v: %s", c.ProcessState, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.stop()
			return errors.New("ferry serve wrote no URL within 30 s")
		}
	}
	b.ca, err = os.ReadFile(b.p("ca.pem"))
	return err
}

// stop stops the server (SIGINT, then SIGKILL after 15 s).
func (b *bench) stop() {
	b.srv.Process.Signal(os.Interrupt)
	select {
	case <-b.exited:
	case <-time.After(15 * time.Second):
		b.srv.Process.Kill()
		<-b.exited
	}
}

// rootProbe is the path of the specification's check for a next root.
func (b *bench) rootProbe() (string, error) {
	n := 0
	for {
		if _, err := os.Stat(b.p("repo", "public", "metadata", strconv.Itoa(n+1)+".root.json")); err != nil {
			break
		}
		n++
	}
	if n == 0 {
		return "", errors.New("the repository has no metadata/1.root.json")
	}
	return "metadata/" + strconv.Itoa(n+1) + ".root.json", nil
}

// procSample is the server's memory and CPU at one moment.
type procSample struct {
	rss, hwm int64 // bytes
	cpu      time.Duration
}

func readProc(pid int) (procSample, error) {
	var s procSample
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
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// After the command name in parentheses, utime and stime are the
	// 12th and 13th fields, in clock ticks of 10 ms.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	return s, nil
}

// sampler keeps the highest VmRSS seen every 100 ms until stopped.
type sampler struct {
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if p, err := readProc(pid); err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, p.rss)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) end() int64 {
	close(s.stop)
	<-s.done
	return s.peak
}

// serverLog counts the warnings and errors in the server's log files, by
// level and message (refusals, rate limits, store failures, TLS handshake
// errors, the connection limit).
func serverLog(paths ...string) (map[string]int, error) {
	out := map[string]int{}
	for _, path := range paths {
		if err := countLog(path, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func countLog(path string, out map[string]int) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, `"level":"WARN"`) && !strings.Contains(l, `"level":"ERROR"`) {
			continue
		}
		msg := field(l, "msg")
		if i := strings.Index(msg, " from 127.0.0.1:"); i >= 0 { // http: TLS handshake error from ADDR: ...
			_, rest, _ := strings.Cut(msg[i+len(" from 127.0.0.1:"):], ": ")
			msg = msg[:i] + ": " + rest
		}
		out[strings.TrimSpace(field(l, "level")+": "+msg+" "+field(l, "status")+" "+field(l, "err"))]++
	}
	return sc.Err()
}

// field is a JSON log line's string or number field, roughly (for a summary).
func field(line, name string) string {
	_, rest, ok := strings.Cut(line, `"`+name+`":`)
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, `"`) {
		v, _, _ := strings.Cut(rest[1:], `"`)
		if len(v) > 120 {
			v = v[:120] + "..."
		}
		return v
	}
	v, _, _ := strings.Cut(rest, ",")
	return strings.TrimSuffix(v, "}")
}

// handlerTimes reads the server's access log: the time its handler took
// for each request (duration_ms: from the request's headers to the end of
// the answer, the TLS handshake and the wait for a connection not
// included), by kind of request.
func handlerTimes(path, probe string) (map[string][]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]time.Duration{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Path     string  `json:"path"`
			Duration float64 `json:"duration_ms"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Path == "" {
			continue
		}
		kind := map[string]string{"/metadata/timestamp.json": kindTimestamp, "/" + probe: kindRoot,
			"/api/v1/events": kindEvents, "/api/v1/enroll": kindEnroll}[l.Path]
		if kind != "" {
			out[kind] = append(out[kind], time.Duration(l.Duration*float64(time.Millisecond)))
		}
	}
	return out, sc.Err()
}
