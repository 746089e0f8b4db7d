package e2e_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// accessLog reads the requests ferry serve logged to file: the path and
// status of each (none before the first request creates the file).
func accessLog(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing logged yet
	}
	if err != nil {
		t.Fatal(err)
	}
	// The server may be writing a batch of lines as this reads: a line is
	// whole once its newline is there, and every whole line must parse.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []string
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var r struct {
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		out = append(out, fmt.Sprintf("%s %d", r.Path, r.Status))
	}
	return out
}

// TestAgentIdleFetchesOnlyTimestamp: one agent manages 10 applications of
// one repository on a 1 s interval. Once they are installed and nothing
// changes, each cycle asks the server (counted from ferry serve's access
// log) for timestamp.json once and for the next root version once (the
// specification's check, answered 404): one refresh per repository per
// cycle, whatever the number of applications, and no other file.
func TestAgentIdleFetchesOnlyTimestamp(t *testing.T) {
	t.Parallel()
	var apps []string
	for i := range 10 {
		apps = append(apps, fmt.Sprintf("app%02d", i))
	}
	s := newFleetSite(t, apps...)
	s.srv.stop()
	logFile := s.path("access.log")
	s.srv = s.serve("repo", "--access-log", logFile)
	m := s.agent("a", "")
	if err := os.WriteFile(m.config, bytes.Replace(mustRead(t, m.config), []byte(`interval = "10s"`), []byte(`interval = "1s"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	p := s.start("agent", "--config", m.config)
	// The first cycle installs all ten; then count the requests of the
	// next cycles, each of which starts with timestamp.json.
	idle := func() []string {
		var after []string
		installed := false
		for _, r := range accessLog(t, logFile) {
			if strings.Contains(r, "/targets/") {
				installed, after = true, nil
				continue
			}
			if installed {
				after = append(after, r)
			}
		}
		return after
	}
	deadline := time.Now().Add(45 * time.Second)
	var reqs []string
	for {
		reqs = idle()
		if n := strings.Count(strings.Join(reqs, "\n"), "/timestamp.json 200"); n >= 5 {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("agent exited: %v\n%s", p.err, p.stderr)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 idle cycles did not happen within 45 s; requests after the installs: %q", reqs)
		}
	}
	for _, app := range apps {
		if got := m.runs(app); got != "1.0.0" {
			t.Fatalf("%s runs %s, want 1.0.0", app, got)
		}
	}
	// Drop the first idle cycle (it may be the installing cycle's tail),
	// then every request is the timestamp or the next-root probe, in turns.
	reqs = reqs[slices.Index(reqs, "/metadata/timestamp.json 200"):]
	ts, probes := 0, 0
	for _, r := range reqs {
		switch {
		case r == "/metadata/timestamp.json 200":
			ts++
		case strings.HasPrefix(r, "/metadata/") && strings.HasSuffix(r, ".root.json 404"):
			probes++
		default:
			t.Errorf("an idle cycle fetched %s", r)
		}
	}
	if probes > ts+1 || probes < ts-1 {
		t.Errorf("%d timestamp requests and %d next-root probes in the idle cycles, want one of each per cycle", ts, probes)
	}
	t.Logf("%d idle cycles: %d requests, %q", ts, len(reqs), reqs)
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
