package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

// busySite is the server's reporting handler whose enrollment token
// enrolls one machine every 3 s (after the first), on a clock that moves
// only when the client under test sleeps: the client's waits are exactly
// what lets its enrollment through, and the test never sleeps itself.
type busySite struct {
	srv      *httptest.Server
	secret   string
	requests atomic.Int32

	mu  sync.Mutex
	now time.Time
}

func newBusySite(t *testing.T, every time.Duration) *busySite {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &busySite{now: time.Now()}
	h, err := server.Reporting(server.ReportConfig{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		EnrollRate: server.Rate{Burst: 1, Every: every}, Now: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, err := server.NewEnrollToken(s.clock())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	s.secret = secret
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *busySite) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *busySite) advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

// client is a client of the site whose sleeps move the site's clock by
// advance(d) (the whole wait, or less), recording each wait.
func (s *busySite) client(t *testing.T, advance func(time.Duration) time.Duration) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := NewClient(s.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.http = s.srv.Client()
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		s.advance(advance(d))
		return ctx.Err()
	}
	return c, &waits
}

func installID(n int) string { return fmt.Sprintf("%032x", n) }

// TestEnrollWaitsForBusyServer: an enrollment the server refuses with 429
// (its token's enrollment rate) is asked again after the server's
// Retry-After, and gets through; OnBusy hears of each wait. It failed
// before Enroll honoured Retry-After (the second machine got the 429).
func TestEnrollWaitsForBusyServer(t *testing.T) {
	s := newBusySite(t, 3*time.Second)
	c, waits := s.client(t, func(d time.Duration) time.Duration { return d })
	var told []time.Duration
	c.OnBusy = func(d time.Duration) { told = append(told, d) }
	for i := range 3 {
		cred, err := c.Enroll(context.Background(), s.secret, installID(i), "host", []App{{App: "hello"}})
		if err != nil {
			t.Fatalf("enroll machine %d: %v", i, err)
		}
		if cred.InstallID != installID(i) || cred.Credential == "" {
			t.Fatalf("enroll machine %d: %+v", i, cred)
		}
	}
	want := []time.Duration{3 * time.Second, 3 * time.Second}
	if !slices.Equal(*waits, want) || !slices.Equal(told, want) {
		t.Errorf("waited %v, told OnBusy %v, want %v", *waits, told, want)
	}
	if n := s.requests.Load(); n != 5 {
		t.Errorf("%d requests, want 5 (3 enrollments, 2 refused while busy)", n)
	}
}

// TestEnrollBusyBounded: a server that stays busy is asked EnrollAttempts
// times in all, then the last 429 is returned; one that asks for longer
// than MaxEnrollWait is not waited for at all.
func TestEnrollBusyBounded(t *testing.T) {
	t.Run("stays busy", func(t *testing.T) {
		s := newBusySite(t, 3*time.Second)
		c, waits := s.client(t, func(time.Duration) time.Duration { return 0 })
		if _, err := c.Enroll(context.Background(), s.secret, installID(0), "host", nil); err != nil {
			t.Fatal(err)
		}
		_, err := c.Enroll(context.Background(), s.secret, installID(1), "host", nil)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || ae.RetryAfter != 3*time.Second {
			t.Fatalf("enroll on a server that stays busy: %v, want its 429 with Retry-After 3s", err)
		}
		if n := s.requests.Load(); n != 1+EnrollAttempts || len(*waits) != EnrollAttempts-1 {
			t.Errorf("%d requests, %d waits; want %d, %d", n, len(*waits), 1+EnrollAttempts, EnrollAttempts-1)
		}
	})
	t.Run("asks too long", func(t *testing.T) {
		s := newBusySite(t, MaxEnrollWait+time.Second)
		c, waits := s.client(t, func(d time.Duration) time.Duration { return d })
		if _, err := c.Enroll(context.Background(), s.secret, installID(0), "host", nil); err != nil {
			t.Fatal(err)
		}
		_, err := c.Enroll(context.Background(), s.secret, installID(1), "host", nil)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests {
			t.Fatalf("enroll: %v, want 429", err)
		}
		if len(*waits) != 0 || s.requests.Load() != 2 {
			t.Errorf("waited %v over %d requests for a Retry-After over MaxEnrollWait; want no wait, 2 requests", *waits, s.requests.Load())
		}
	})
}
