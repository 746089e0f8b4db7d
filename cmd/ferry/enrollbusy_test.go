package main

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

// busyEnrollServer is the server's reporting API over TLS on loopback,
// whose enrollment token enrolls one machine, then one every `every`.
// It returns the flags ferry agent enroll needs besides --state-dir.
func busyEnrollServer(t *testing.T, every time.Duration) []string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := server.Reporting(server.ReportConfig{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		EnrollRate: server.Rate{Burst: 1, Every: every}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	secret, tok, err := server.NewEnrollToken(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	ca, tokFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "enroll.token")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"agent", "enroll", "--server", srv.URL, "--ca", ca, "--token-file", tokFile}
}

// TestAgentEnrollWaitsForBusyServer: ferry agent enroll answered 429 by
// the server (its token's enrollment rate, here one a second) says so in
// one line, waits the Retry-After and enrolls. It failed before: the
// second machine exited 1 with "server answered 429: too many requests".
func TestAgentEnrollWaitsForBusyServer(t *testing.T) {
	args := busyEnrollServer(t, time.Second)
	if code, _, errOut := runFerry(t, append(args, "--state-dir", t.TempDir())...); code != 0 {
		t.Fatalf("first enrollment: exit %d: %s", code, errOut)
	}
	code, out, errOut := runFerry(t, append(args, "--state-dir", t.TempDir())...)
	if code != 0 || !strings.HasPrefix(out, "enrolled installation ") {
		t.Fatalf("second enrollment: exit %d: %q %q", code, out, errOut)
	}
	if errOut != "ferry: server busy, retrying in 1s\n" {
		t.Errorf("stderr %q, want one line: ferry: server busy, retrying in 1s", errOut)
	}
}

// TestAgentEnrollBusyTooLong: a server that asks to wait longer than a
// client waits (report.MaxEnrollWait) is not waited for: the 429 and a
// hint say to try again later.
func TestAgentEnrollBusyTooLong(t *testing.T) {
	args := busyEnrollServer(t, 2*time.Minute)
	if code, _, errOut := runFerry(t, append(args, "--state-dir", t.TempDir())...); code != 0 {
		t.Fatalf("first enrollment: exit %d: %s", code, errOut)
	}
	code, _, errOut := runFerry(t, append(args, "--state-dir", t.TempDir())...)
	if code == 0 || !strings.Contains(errOut, "server answered 429") ||
		!strings.Contains(errOut, "ferry: hint: the server is still busy enrolling other machines (it asks to wait 120s): run ferry agent enroll again later") {
		t.Fatalf("exit %d, stderr %q; want the 429 and the hint", code, errOut)
	}
	if strings.Contains(errOut, "retrying") {
		t.Errorf("stderr %q: waited for a Retry-After over report.MaxEnrollWait", errOut)
	}
}
