package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file's neighbours that run the ferry command build it
// once per test run, into a directory TestMain removes at the end.
var (
	binDir    string
	buildOnce sync.Once
	ferryPath string
	buildErr  error
)

// afterTests run once every test has finished (for example the PKCS#11
// tests' SoftHSM2 token clean-up, under the pkcs11 build tag).
var afterTests []func()

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	for _, f := range afterTests {
		f()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// ferryBinary returns the path of the ferry command built from this
// checkout, building it on first use.
func ferryBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command, to build ferry: %w", err)
			return
		}
		ferryPath = filepath.Join(binDir, "ferry")
		out, err := exec.Command(goCmd, "build", "-o", ferryPath, "github.com/ferry-updates/ferry/cmd/ferry").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ferry: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return ferryPath
}

// ferryCmd runs the ferry command as a user would, in a directory of its
// own, with a passphrase for the repository's keys and a cheap scrypt work
// factor (tests only).
type ferryCmd struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func newFerryCmd(t *testing.T) *ferryCmd {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the end-to-end agent tests use shell scripts and POSIX signals")
	}
	dir := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir(),
		"FERRY_PASSPHRASE=e2e passphrase", "FERRY_INSECURE_SCRYPT_WORK_FACTOR=10",
	}
	return &ferryCmd{t: t, bin: ferryBinary(t), dir: dir, env: env}
}

// path is name inside the command's directory.
func (f *ferryCmd) path(name ...string) string {
	return filepath.Join(append([]string{f.dir}, name...)...)
}

func (f *ferryCmd) command(args ...string) *exec.Cmd {
	c := exec.Command(f.bin, args...)
	c.Dir, c.Env = f.dir, f.env
	return c
}

// try runs ferry with args and returns its stdout, stderr and error.
func (f *ferryCmd) try(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	c := f.command(args...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	return out.String(), errb.String(), err
}

// run runs ferry with args, fails the test if it fails, and returns stdout.
func (f *ferryCmd) run(args ...string) string {
	f.t.Helper()
	out, errs, err := f.try(args...)
	if err != nil {
		f.t.Fatalf("ferry %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

// write writes a file under the command's directory.
func (f *ferryCmd) write(name, content string, mode os.FileMode) string {
	f.t.Helper()
	p := f.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// proc is a ferry process running in the background.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line
	stderr *syncBuffer
	done   chan struct{}
	err    error // set when done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start starts ferry with args in the background; the test's cleanup
// stops it with SIGTERM (and SIGKILL if it does not exit within 10 s).
func (f *ferryCmd) start(args ...string) *proc {
	f.t.Helper()
	c := f.command(args...)
	p := &proc{t: f.t, name: "ferry " + strings.Join(args, " "), cmd: c, lines: make(chan string, 1024),
		stderr: &syncBuffer{}, done: make(chan struct{})}
	stdout, err := c.StdoutPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	c.Stderr = p.stderr
	if err := c.Start(); err != nil {
		f.t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads this far: drop
			}
		}
		io.Copy(io.Discard, stdout)
		p.err = c.Wait()
		close(p.lines)
		close(p.done)
	}()
	f.t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) if it runs.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sigterm)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitLine reads stdout until a line containing substr, and returns it.
func (p *proc) waitLine(substr string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s exited (%v) before printing %q; stderr:\n%s", p.name, p.err, substr, p.stderr)
			}
			if strings.Contains(l, substr) {
				return l
			}
		case <-deadline:
			p.t.Fatalf("%s did not print %q within %v; stderr:\n%s", p.name, substr, timeout, p.stderr)
		}
	}
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("%s still runs after %v; stderr:\n%s", p.name, timeout, p.stderr)
		return nil
	}
}

// serveProc is a real ferry serve over HTTPS on 127.0.0.1 with its own CA.
type serveProc struct {
	*proc
	url, ca string
}

// serve starts ferry serve --repo repo on a free port with a self-signed CA
// and waits for the URL it prints.
func (f *ferryCmd) serve(repoDir string, extra ...string) *serveProc {
	f.t.Helper()
	ca := f.path("ca.pem")
	args := append([]string{"serve", "--repo", repoDir, "--addr", "127.0.0.1:0", "--self-signed", ca}, extra...)
	p := f.start(args...)
	line := p.waitLine("serving ", 60*time.Second)
	_, rest, ok := strings.Cut(line, " on ")
	url, _, _ := strings.Cut(rest, " ")
	if !ok || !strings.HasPrefix(url, "https://127.0.0.1:") {
		f.t.Fatalf("ferry serve printed %q, want its https URL", line)
	}
	return &serveProc{proc: p, url: url, ca: ca}
}
