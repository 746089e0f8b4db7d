package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const defaultTimeout = 30 * time.Second

// Health says how to decide that a new version works. Either Cmd (run
// without a shell; it must exit 0) or URL (it must answer 2xx to a GET,
// asked directly: proxy settings from the environment are ignored and a
// redirect off the URL's scheme and host:port is a failure), or both. Each attempt has Timeout (default 30 s); a failed attempt is retried
// Retries times (a negative value counts as 0), Interval apart (default
// 1 s). A hang counts as a failure.
//
// The command gets FERRY_APP, FERRY_VERSION and FERRY_PATH (the new
// executable, or the app's "current" slot link) in its environment.
type Health struct {
	Cmd      []string
	URL      string
	Timeout  time.Duration
	Retries  int
	Interval time.Duration
}

func (h *Health) check(ctx context.Context, env []string) error {
	if len(h.Cmd) == 0 && h.URL == "" {
		return errors.New("health check has neither a command nor a URL")
	}
	timeout, interval, retries := h.Timeout, h.Interval, max(h.Retries, 0)
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if interval <= 0 {
		interval = time.Second
	}
	var err error
	for try := 0; try <= retries; try++ { // at least one attempt: never pass untried
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(interval):
			}
		}
		if err = h.once(ctx, env, timeout); err == nil {
			return nil
		}
	}
	if retries <= 0 {
		return fmt.Errorf("1 attempt failed: %w", err)
	}
	return fmt.Errorf("%d attempts failed, last: %w", retries+1, err)
}

func (h *Health) once(ctx context.Context, env []string, timeout time.Duration) error {
	if len(h.Cmd) > 0 {
		if err := runCmd(ctx, h.Cmd, env, timeout); err != nil {
			return err
		}
	}
	if h.URL != "" {
		return probe(ctx, h.URL, timeout)
	}
	return nil
}

// runCmd runs argv (no shell) with a deadline; a hang is killed.
func runCmd(ctx context.Context, argv, env []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stderr bytes.Buffer
	var err error
	for try := 0; ; try++ {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = &limitWriter{w: &stderr, n: 2048}
		cmd.WaitDelay = 500 * time.Millisecond
		err = cmd.Run()
		// ETXTBSY: a child forked by another goroutine of this process may
		// still hold a write descriptor of the executable just installed
		// until it execs (golang.org/issue/22315). It passes quickly.
		if !errors.Is(err, syscall.ETXTBSY) || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(stderr.String())
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%q: no answer within %v (hang)", argv[0], timeout)
	}
	if msg != "" {
		return fmt.Errorf("%q: %v: %s", argv[0], err, msg)
	}
	return fmt.Errorf("%q: %v", argv[0], err)
}

func probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	return nil
}

// probeClient asks the probed server itself: never through a proxy from
// the environment (which could answer for a broken release), and never
// following a redirect off the probed scheme and host:port.
var probeClient = &http.Client{
	Transport:     probeTransport(),
	CheckRedirect: sameOrigin,
}

func probeTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	return t
}

func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
		return fmt.Errorf("redirect to %s leaves %s://%s", req.URL.Redacted(), first.Scheme, first.Host)
	}
	return nil
}

type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
