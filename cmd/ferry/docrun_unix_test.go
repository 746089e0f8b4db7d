//go:build unix

package main

import (
	"context"
	"errors"
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
	waitLineRE   = regexp.MustCompile(`^(until|while) \[ `)
	loopPortRE   = regexp.MustCompile(`\b(127\.0\.0\.1|localhost):([0-9]+)\b`)
)

// prepareScript returns the script to run. The commands run as written,
// with only what a test cannot avoid added: fixed loopback ports are mapped
// to free ones (so that parallel runs and busy ports do not collide), and
// the PID of every background command is recorded so that an EXIT trap
// stops it when the script fails before the document's own kill. The
// harness does not wait for a background server itself: the document must
// (a background command must be followed, within two lines, by an
// until/while loop that waits for it), or its next command races the server
// as it would for a reader who pastes it.
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
	out.WriteString("__doc_bg=\ntrap 'for p in $__doc_bg; do kill -INT $p 2>/dev/null || true; done; wait' EXIT\nset -x\n")
	var logical string // the command so far, across \ continuations
	waitWithin := 0    // lines left in which a wait loop must follow a background command
	for _, line := range strings.SplitAfter(script, "\n") {
		out.WriteString(line)
		logical += line
		if strings.HasSuffix(strings.TrimRight(line, "\n"), "\\") {
			continue
		}
		cmd := strings.TrimSpace(logical)
		logical = ""
		if waitWithin > 0 {
			if waitLineRE.MatchString(cmd) {
				waitWithin = 0
			} else if waitWithin--; waitWithin == 0 {
				t.Fatalf("a background command is not followed by a loop that waits for it (until [ -s FILE ]; ...):\n%s", cmd)
			}
		}
		if backgroundRE.MatchString(cmd) {
			out.WriteString("__doc_bg=\"$__doc_bg $!\"\n")
			waitWithin = 2
		}
	}
	if waitWithin > 0 {
		t.Fatal("the script ends with a background command that nothing waits for")
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
