package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/store"
)

// BenchmarkPages renders each page of a dashboard over a SQLite store of
// 10,000 installations (each installed 1.0.0; 2,000 of them tried 1.1.0,
// 100 of which failed and rolled back; 50 security events): the handler
// alone, without TLS.
//
//	go test ./dashboard/ -run '^$' -bench Pages -benchtime 20x
func BenchmarkPages(b *testing.B) {
	const installs = 10000
	f := newFixture(b, nil)
	f.repo.sign("hello", "1.0.0", "1.1.0")
	f.repo.sign("api", "2.0.0")
	ctx := context.Background()
	if err := f.st.CreateToken(ctx, store.Token{ID: "bench", Kind: store.Enroll, Scope: "*", Hash: "h-bench", Created: t0}); err != nil {
		b.Fatal(err)
	}
	now := f.clock.Now()
	for i := range installs {
		id := fmt.Sprintf("%032x", i)
		version := "1.0.0"
		if i < 2000 {
			version = "1.1.0"
		}
		if err := f.st.Enroll(ctx, store.Installation{ID: id, CredentialHash: "c", Enrolled: now.Add(-48 * time.Hour),
			LastSeen: now.Add(-time.Duration(i%48) * time.Hour), Apps: []store.App{{App: "hello", Version: version, Channel: "stable"}}}, "h-bench"); err != nil {
			b.Fatal(err)
		}
		at := now.Add(-time.Duration(i) * time.Second)
		evs := installEvents("1.0.0", at.Add(-24*time.Hour), true)
		if i < 2000 {
			evs = append(evs, installEvents("1.1.0", at, i >= 100)...)
		}
		if i < 50 {
			evs = append(evs, store.Event{Event: event.Event{Time: at, Kind: event.DownloadRejected, App: "hello", Version: "1.1.0",
				Cause: "sha256 mismatch", Evidence: map[string]string{"got_sha256": "bb"}}})
		}
		f.report(id, 1, evs...)
	}
	br, csrf := f.signedIn()
	br.post(Prefix+"apps/hello/rollout", url.Values{"csrf": {csrf}, "action": {"start"}, "version": {"1.1.0"}, "percent": {"20"}})
	cookies := br.c.Jar.Cookies(mustURLB(b, f.srv.URL+Prefix))
	for _, p := range []string{"", "apps/hello", "apps/hello?range=30d", "security", "installations"} {
		b.Run("page="+p, func(b *testing.B) {
			n := 0
			for b.Loop() {
				req := httptest.NewRequest("GET", "https://example"+Prefix+p, nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				w := httptest.NewRecorder()
				f.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d", p, w.Code)
				}
				n = w.Body.Len()
			}
			b.ReportMetric(float64(n), "bytes/page")
		})
	}
}

func installEvents(version string, at time.Time, healthy bool) []store.Event {
	e := func(k event.Kind, d time.Duration) store.Event {
		return store.Event{Event: event.Event{Time: at.Add(d), Kind: k, App: "hello", Version: version}}
	}
	if healthy {
		return []store.Event{e(event.InstallStarted, 0), e(event.InstallDone, time.Second), e(event.HealthPassed, 2*time.Second)}
	}
	return []store.Event{e(event.InstallStarted, 0), e(event.HealthFailed, time.Second), e(event.RolledBack, 2*time.Second)}
}

func mustURLB(b *testing.B, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		b.Fatal(err)
	}
	return u
}
