package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkServe is the per-request work of ferry serve's repository path
// in process, without the network and TLS: the access log (JSON lines to
// a file, as ferry serve writes it to stderr or --access-log; /slog: the
// same through slog's JSON handler), deadlines, opening, ETag,
// headers and body. bench/serve measures the whole server against nginx.
func BenchmarkServe(b *testing.B) {
	dir := testRepo(b)
	repoH, err := Repository(filepath.Join(dir, "public"))
	if err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	m, err := NewMetrics(MetricsConfig{})
	if err != nil {
		b.Fatal(err)
	}
	target := "/targets/hello/1.0.0/linux-amd64/" + strings.Repeat("ab", 32) + ".hello"
	for _, c := range []struct {
		name    string
		log     io.Writer
		slog    bool // the access log through slog (Config.Logger) rather than Config.AccessLog
		path    string
		metrics *Metrics // ferry serve --metrics-token-file
	}{
		{"timestamp/log-file", logf, false, "/metadata/timestamp.json", nil},
		{"timestamp/log-file/slog", logf, true, "/metadata/timestamp.json", nil},
		{"timestamp/log-discard", io.Discard, false, "/metadata/timestamp.json", nil},
		{"timestamp/log-discard/metrics", io.Discard, false, "/metadata/timestamp.json", m},
		{"target/log-file", logf, false, target, nil},
	} {
		var lines *lineLog
		if !c.slog {
			lines = newLineLog(c.log, lineDelay)
			defer lines.close()
		}
		h := accessLog(slog.New(slog.NewJSONHandler(c.log, nil)), lines, deadlines{time.Minute, time.Minute, 1 << 10}, c.metrics, repoH)
		req := httptest.NewRequest("GET", c.path, nil)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := &plainWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.n == 0 {
					b.Fatal("nothing served")
				}
			}
		})
	}
}
