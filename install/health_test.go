//go:build unix

package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealthExitStatusOnly_R37: a health command's output is never parsed;
// only its exit status counts. "OK" with exit 1 fails, garbage with exit 0
// passes, and so does an error-looking message on stderr with exit 0.
func TestHealthExitStatusOnly_R37(t *testing.T) {
	cases := []struct {
		name string
		sh   string
		ok   bool
	}{
		{"OK but exit 1", `echo OK; echo healthy: true; exit 1`, false},
		{"garbage with exit 0", `printf '\377\000garbage ERROR FAIL {"healthy":false}\n'; exit 0`, true},
		{"error on stderr with exit 0", `echo "fatal: unhealthy" >&2; exit 0`, true},
		{"silent exit 2", `exit 2`, false},
		{"killed by a signal", `echo OK; kill -9 $$`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			h := &Health{Cmd: []string{"/bin/sh", "-c", c.sh}, Timeout: 5 * time.Second}
			if err := h.check(ctx, nil); (err == nil) != c.ok {
				t.Fatalf("check: %v, want ok=%v", err, c.ok)
			}
			// The same through Apply: a failure rolls back, a pass commits.
			b, dir := newBinary(t)
			if _, err := b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))); err != nil {
				t.Fatal(err)
			}
			b.Health = h
			res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0)))
			want := "2.0.0"
			if !c.ok {
				want = "1.0.0"
				if !errors.Is(err, ErrRolledBack) {
					t.Fatalf("Apply: %+v %v, want a rollback", res, err)
				}
			} else if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := run(t, b.Target); got != want || res.Version != want {
				t.Fatalf("target prints %q, result %+v; want %s", got, res, want)
			}
		})
	}
}

// A negative Retries never means zero attempts: the check still runs once.
func TestHealthNegativeRetries_R44(t *testing.T) {
	h := &Health{Cmd: []string{"/bin/sh", "-c", "exit 1"}, Retries: -5}
	if err := h.check(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "1 attempt failed: ") {
		t.Fatalf("check with Retries -5: %v, want one failed attempt", err)
	}
}

// A Restart command that fails after a rollback is reported in the Result
// and the error, not only logged.
func TestRollbackRestartErrorReported_R44(t *testing.T) {
	ctx := context.Background()
	b, dir := newBinary(t)
	if _, err := b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))); err != nil {
		t.Fatal(err)
	}
	b.Health = &Health{Cmd: []string{b.Target}}
	b.Restart = []string{"/bin/sh", "-c", `test "$FERRY_VERSION" = 2.0.0 || { echo cannot restart >&2; exit 3; }`}
	res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 1)))
	if !errors.Is(err, ErrRolledBack) || !res.RolledBack || res.RestartErr == nil ||
		!strings.Contains(err.Error(), "cannot restart") {
		t.Fatalf("got %+v, %v; want a rollback with the restart's failure", res, err)
	}
}

// hostileNames are directory names that a shell would interpret.
var hostileNames = []string{"$(touch PWNED)", "`touch PWNED`", `it's "quoted"`, "a b;touch PWNED", "%PATH%&&touch PWNED", "ünï cödé"}

// TestHostilePathsNotInterpreted_R37 installs into directories whose names
// are shell syntax, with health and restart commands that get such names as
// arguments and in FERRY_PATH: commands run without a shell, so nothing is
// ever interpreted (no PWNED file appears) and the install works.
func TestHostilePathsNotInterpreted_R37(t *testing.T) {
	ctx := context.Background()
	for _, name := range hostileNames {
		base := t.TempDir()
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Chdir(base) // where a "touch PWNED" would land
		b := &Binary{App: "hello", Target: filepath.Join(dir, "bin", "hello"), StateDir: filepath.Join(dir, "state")}
		if _, err := b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		marker := filepath.Join(dir, "args")
		// The restart command records its arguments and FERRY_PATH verbatim.
		b.Restart = []string{"/bin/sh", "-c", `printf '%s|' "$@" "$FERRY_PATH" > "$0"`, marker, name, "$(touch PWNED)"}
		b.Health = &Health{Cmd: []string{b.Target, name, "`touch PWNED`"}}
		res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0)))
		if err != nil || res.Version != "2.0.0" {
			t.Fatalf("%q: %+v %v", name, res, err)
		}
		if got, want := readFile(t, marker), name+"|$(touch PWNED)|"+b.Target+"|"; got != want {
			t.Errorf("%q: restart saw %q, want %q", name, got, want)
		}
		filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "PWNED" {
				t.Errorf("%q: a name was interpreted by a shell: %s exists", name, p)
			}
			return nil
		})
	}
}

// A --health-url probe asks the new version itself: a proxy from the
// environment that answers 200 for anything must not make a broken
// release pass (R44). Go reads the proxy environment once per process, so
// the probe runs in a child process with HTTP_PROXY and HTTPS_PROXY set.
func TestHealthURLIgnoresProxy_R44(t *testing.T) {
	if url := os.Getenv("FERRY_TEST_PROBE_URL"); url != "" {
		h := &Health{URL: url, Timeout: 5 * time.Second}
		if err := h.check(context.Background(), nil); err != nil {
			fmt.Println("probe failed:", err)
		} else {
			fmt.Println("probe passed")
		}
		return
	}
	var hits atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok from the proxy")
	}))
	defer proxy.Close()
	// The release is broken: nothing answers at its address (.invalid never
	// resolves), only the proxy would.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHealthURLIgnoresProxy_R44$", "-test.v")
	cmd.Env = append(os.Environ(), "FERRY_TEST_PROBE_URL=http://broken-release.invalid/health",
		"HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL, "http_proxy="+proxy.URL, "https_proxy="+proxy.URL,
		"NO_PROXY=", "no_proxy=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "probe failed:") || hits.Load() != 0 {
		t.Fatalf("probe through a proxy: %d proxy hits, child said:\n%s", hits.Load(), out)
	}
}

// A probe that is redirected to another host fails, whatever that host
// answers; a redirect on the same host is followed (R44).
func TestHealthURLRedirectOffHost_R44(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "healthy, says someone else")
	}))
	defer other.Close()
	probed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/health", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/health", http.StatusFound)
		case "/health":
			io.WriteString(w, "ok")
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer probed.Close()
	ctx := context.Background()
	if err := (&Health{URL: probed.URL + "/away", Timeout: 5 * time.Second}).check(ctx, nil); err == nil ||
		!strings.Contains(err.Error(), "leaves") {
		t.Fatalf("redirect to another host: %v, want a failure", err)
	}
	if err := (&Health{URL: probed.URL + "/here", Timeout: 5 * time.Second}).check(ctx, nil); err != nil {
		t.Fatalf("redirect on the same host: %v", err)
	}
}
