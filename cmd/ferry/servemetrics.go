package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

// serveMetrics returns the metrics of serve and their handler for
// /metrics, or nils without --metrics-token-file: the metrics are never
// public, so they are served only to a client that presents the token in
// that file as a bearer token.
func (e *env) serveMetrics(fl serveFlags, ko repo.Options, st store.Installations) (*server.Metrics, http.Handler, error) {
	if fl.metricsTokenFile == "" {
		return nil, nil, nil
	}
	token, err := readMetricsToken(fl.metricsTokenFile)
	if err != nil {
		return nil, nil, err
	}
	r, err := repo.OpenWith(fl.dir, ko)
	if err != nil {
		return nil, nil, err
	}
	m, err := server.NewMetrics(server.MetricsConfig{Repo: r, PublicDir: filepath.Join(fl.dir, "public")})
	if err != nil {
		return nil, nil, err
	}
	if fl.staleAfter > 0 {
		m.SetStaleInstallations(staleCounter(st, fl.staleAfter, time.Now))
	}
	h, err := m.Handler(token)
	if err != nil {
		return nil, nil, err
	}
	return m, h, nil
}

// staleCounter counts the installations of st last seen more than after
// ago, with one COUNT query at each scrape: no rows are listed, and a
// fleet larger than a listing's limit is counted whole.
func staleCounter(st store.Installations, after time.Duration, now func() time.Time) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		return st.CountInstallations(ctx, store.InstallationQuery{SeenBefore: now().Add(-after)})
	}
}

// readMetricsToken reads the bearer token of /metrics: the file's content
// without surrounding white space, at least server.MinMetricsToken bytes.
func readMetricsToken(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("--metrics-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < server.MinMetricsToken || strings.ContainsAny(token, " \t\r\n") {
		return "", withHint(errors.New("--metrics-token-file "+name+": the token must be one word of at least "+fmt.Sprint(server.MinMetricsToken)+" bytes"),
			"make one with: head -c 32 /dev/urandom | base64 > "+name)
	}
	return token, nil
}
