package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/ferry-updates/ferry/dashboard"
	"github.com/ferry-updates/ferry/internal/safefile"
	"github.com/ferry-updates/ferry/server"
)

// selfSignedTLS makes a CA and a server certificate for hosts (always
// including 127.0.0.1 and localhost) and writes the CA certificate to caFile.
func selfSignedTLS(hosts []string, caFile string) (*tls.Config, error) {
	return server.SelfSigned(hosts, caFile)
}

// selfSignedCA loads the CA kept in caFile (its key in server.CAKeyFile)
// or makes one in memory, and issues a server certificate for hosts.
func selfSignedCA(hosts []string, caFile string) (*tls.Config, *server.CA, error) {
	ca, err := server.LoadOrCreateCA(caFile, server.CAKeyFile(caFile))
	if err != nil {
		return nil, nil, withHint(err, "see ferry serve --help on --self-signed")
	}
	cfg, err := ca.ServerConfig(hosts)
	return cfg, ca, err
}

// saveCA writes a CA that selfSignedCA made (nothing if it loaded it).
func (e *env) saveCA(ca *server.CA, caFile string) error {
	if ca == nil || !ca.New() {
		return nil
	}
	if _, err := os.Stat(caFile); err == nil {
		fmt.Fprintf(e.stderr, "ferry: note: no CA key %s: replacing %s with a new CA (clients need the new file)\n", server.CAKeyFile(caFile), caFile)
	}
	return ca.Save(caFile, server.CAKeyFile(caFile))
}

// accessLogWriter returns where the server's log goes: stderr by default,
// stdout for "-", or the end of FILE (created 0600, never through a
// symlink). The function it returns closes the file.
func (e *env) accessLogWriter(name string) (io.Writer, func(), error) {
	switch name {
	case "":
		return e.stderr, func() {}, nil
	case "-":
		return e.stdout, func() {}, nil
	}
	f, err := safefile.OpenPartial(name)
	if err == nil {
		_, err = f.Seek(0, io.SeekEnd)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, nil, fmt.Errorf("--access-log: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// loadTLS loads a certificate chain and key for serving.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	return server.LoadKeyPair(certFile, keyFile)
}

// runServer serves the repository's public directory on ln over TLS until
// ctx is cancelled, and the admin API under /api/v1/ when admin is not nil
// (runServerWith: also the reporting API and the metrics).
// The access log goes to logw as JSON (nowhere if nil).
func runServer(ctx context.Context, ln net.Listener, publicDir string, admin http.Handler, tlsCfg *tls.Config, logw io.Writer) error {
	return runServerWith(ctx, ln, publicDir, apiHandlers{admin: admin}, tlsCfg, logw)
}

// apiHandlers are the APIs ferry serve mounts next to the repository.
type apiHandlers struct {
	admin  http.Handler // /api/v1/ (publishers)
	report http.Handler // /api/v1/enroll and /api/v1/events (installations)
	// metrics counts every request (nil: nothing counted); metricsH
	// serves them on /metrics (nil: no /metrics).
	metrics  *server.Metrics
	metricsH http.Handler
	// dashboard is served on /dashboard/ (nil: no dashboard).
	dashboard http.Handler
}

// repositoryFirst sends requests for the repository's files (nearly all
// of a server's requests) straight to repo, and the others to mux: the
// mux's path cleaning and pattern matching cost about 3 % of the CPU of
// serving timestamp.json. repo refuses any path that is not clean itself.
func repositoryFirst(repo, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; strings.HasPrefix(p, "/metadata/") || strings.HasPrefix(p, "/targets/") {
			repo.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func runServerWith(ctx context.Context, ln net.Listener, publicDir string, api apiHandlers, tlsCfg *tls.Config, logw io.Writer) error {
	var h http.Handler
	h, err := server.Repository(publicDir)
	if err != nil {
		ln.Close()
		return err
	}
	fast, _ := h.(server.FastFiles)
	if api.admin != nil || api.report != nil || api.metricsH != nil || api.dashboard != nil {
		mux := http.NewServeMux()
		if api.admin != nil {
			mux.Handle("/api/v1/", api.admin)
		}
		if api.report != nil {
			mux.Handle("/api/v1/enroll", api.report)
			mux.Handle("/api/v1/events", api.report)
		}
		if api.metricsH != nil {
			mux.Handle(server.MetricsPath, api.metricsH)
		}
		if api.dashboard != nil {
			mux.Handle(dashboard.Prefix, api.dashboard)
		}
		mux.Handle("/", h)
		h = repositoryFirst(h, mux)
	}
	if logw == nil {
		logw = io.Discard
	}
	// The server's own log lines (slog) and the access log's batches reach
	// the same writer from different goroutines, each under a lock of its
	// own: one more lock makes their writes whole and never overlapping,
	// whatever the writer (a file, a pipe or a test's buffer).
	if _, ok := logw.(*lockedWriter); !ok {
		logw = &lockedWriter{w: logw}
	}
	return server.Run(ctx, server.Config{
		Handler:   h,
		TLS:       tlsCfg,
		Listener:  ln,
		Logger:    slog.New(slog.NewJSONHandler(logw, nil)),
		AccessLog: logw, // the same JSON lines, without slog's cost
		Metrics:   api.metrics,
		Fast:      fast, // timestamp.json and the like: repositoryFirst sends their paths to the same handler
	})
}

// lockedWriter serializes the writes of several writers to one io.Writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
