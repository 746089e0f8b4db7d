//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() { testCommands[docWaitCmd] = func() { os.Exit(docWait()) } }

func TestDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry and runs the documented commands")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on PATH")
	}
	root := moduleRoot(t)
	for _, d := range docRuns {
		t.Run(d.file, func(t *testing.T) {
			if d.platform != "" && d.platform != runtime.GOOS+"/"+runtime.GOARCH {
				t.Skipf("the commands of %s are written for %s", d.file, d.platform)
			}
			md, err := os.ReadFile(filepath.Join(root, d.file))
			if err != nil {
				t.Fatal(err)
			}
			script, err := docScript(string(md), d.headings)
			if err != nil {
				t.Fatalf("%s: %v", d.file, err)
			}
			runDocScript(t, root, script)
		})
	}
}

var (
	backgroundRE = regexp.MustCompile(`[^&]&\s*(#.*)?$`)
	addrFlagRE   = regexp.MustCompile(`--addr[ =](\S+)`)
	loopPortRE   = regexp.MustCompile(`\b(127\.0\.0\.1|localhost):([0-9]+)\b`)
)

// prepareScript maps fixed loopback ports to free ones and inserts a wait
// after every background command; it returns the script to run.
func prepareScript(t *testing.T, script string) string {
	ports := map[string]string{}
	script = loopPortRE.ReplaceAllStringFunc(script, func(s string) string {
		m := loopPortRE.FindStringSubmatch(s)
		if m[2] == "0" {
			return s
		}
		if ports[m[2]] == "" {
			ports[m[2]] = freePort(t)
		}
		return m[1] + ":" + ports[m[2]]
	})
	var out strings.Builder
	out.WriteString("__doc_bg=\ntrap 'for p in $__doc_bg; do kill -INT $p 2>/dev/null; done; wait' EXIT\nset -x\n")
	var logical string // the command so far, across \ continuations
	for _, line := range strings.SplitAfter(script, "\n") {
		out.WriteString(line)
		logical += line
		if strings.HasSuffix(strings.TrimRight(line, "\n"), "\\") {
			continue
		}
		if backgroundRE.MatchString(strings.TrimRight(logical, "\n")) {
			m := addrFlagRE.FindStringSubmatch(logical)
			if m == nil {
				t.Fatalf("background command without --addr (the harness cannot tell when it is ready):\n%s", logical)
			}
			fmt.Fprintf(&out, "__doc_bg=\"$__doc_bg $!\"; %s %s $!\n", docWaitCmd, m[1])
		}
		logical = ""
	}
	return out.String()
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// runDocScript runs script with sh -e in a fresh copy of the checkout.
func runDocScript(t *testing.T, root, script string) {
	dir := t.TempDir()
	checkout := filepath.Join(dir, "checkout")
	copyCheckout(t, root, checkout)
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", prepareScript(t, script))
	cmd.Dir = checkout
	cmd.Env = docEnv(t, home)
	// A process group, so that a timeout also stops the servers it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the documented commands failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// docEnv is the test's environment with a fresh HOME and the Go caches of
// the test's own environment (so that go build works offline and warm).
func docEnv(t *testing.T, home string) []string {
	goenv := map[string]string{}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS"} {
		b, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		goenv[k] = strings.TrimSpace(string(b))
	}
	goenv["GOFLAGS"] = strings.TrimSpace(goenv["GOFLAGS"] + " -trimpath")
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || strings.HasPrefix(k, "XDG_") || strings.HasPrefix(k, "FERRY_") || goenv[k] != "" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range goenv {
		env = append(env, k+"="+v)
	}
	return append(env, "HOME="+home, envInsecureWorkFactor+"=10")
}

// copyCheckout copies the files git knows of (tracked, and untracked but
// not ignored) from root to dst; without git, everything but .git.
func copyCheckout(t *testing.T, root, dst string) {
	files, err := gitFiles(root)
	if err != nil {
		t.Logf("git ls-files: %v; copying the whole tree", err)
		files = nil
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".git" {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(root, p)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

func gitFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, filepath.FromSlash(f))
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no files")
	}
	return files, nil
}

// docWait implements "ferry-doc-wait HOST:PORT PID": wait up to a minute
// for HOST:PORT to accept a connection, failing at once if PID exits.
func docWait() int {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: "+docWaitCmd+" HOST:PORT PID")
		return 2
	}
	pid, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, docWaitCmd+":", err)
		return 2
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if answers(os.Args[1]) {
			return 0
		}
		if syscall.Kill(pid, 0) != nil {
			fmt.Fprintf(os.Stderr, "%s: background command (pid %d) exited before %s accepted connections\n", docWaitCmd, pid, os.Args[1])
			return 1
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "%s: %s did not accept connections within a minute\n", docWaitCmd, os.Args[1])
	return 1
}

// answers reports whether the server at addr is serving: the kernel accepts
// connections as soon as the port listens, before the server is ready
// (ferry serve writes its --self-signed CA file after listening), so a
// plain HTTP request must get some answer back (an HTTPS server answers
// 400 to it, and only once it serves).
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return false
	}
	var b [1]byte
	n, _ := c.Read(b[:])
	return n == 1
}
