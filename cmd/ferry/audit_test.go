package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
)

// runFerry runs one ferry command line and returns its status and output.
func runFerry(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := e.run(context.Background(), args)
	return code, out.String(), errb.String()
}

func exampleLog(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "audit", "testdata", "example.log"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ferry audit verify accepts the example log and, for each kind of
// tampering, exits 1 naming the first bad line (R65).
func TestCLIAuditVerify_R65(t *testing.T) {
	dir := t.TempDir()
	orig := exampleLog(t)
	ls := strings.SplitAfter(string(orig), "\n")
	ls = ls[:len(ls)-1]
	tests := []struct {
		name string
		log  string
		want string // stderr, or stdout when ""
	}{
		{"intact", string(orig), ""},
		{"edited", strings.Replace(string(orig), "install.rolled_back", "install.done", 1), `line 7 \(seq 7\): prev is [0-9a-f]{64}, but line 6 hashes to [0-9a-f]{64}: line 6 was changed`},
		{"deleted", strings.Join(append(ls[:4:4], ls[5:]...), ""), `line 5 \(seq 5\): seq is 6, want 5`},
		{"swapped", strings.Join(append(ls[:4:4], ls[5], ls[4], ls[6], ls[7], ls[8]), ""), `line 5 \(seq 5\): seq is 6, want 5`},
		{"inserted", strings.Join(append(ls[:4:4], append([]string{ls[3]}, ls[4:]...)...), ""), `line 5 \(seq 5\): seq is 4, want 5`},
		{"torn", string(orig[:len(orig)-20]), `line 9 \(seq 9\): no newline at the end`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".log")
			if err := os.WriteFile(p, []byte(tt.log), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := runFerry(t, "audit", "verify", p)
			if tt.want == "" {
				if code != 0 || !regexp.MustCompile(`^9 lines, last seq 9 hash [0-9a-f]{64}\n$`).MatchString(out) {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
				}
				return
			}
			if code != 1 || !regexp.MustCompile(`^ferry: error: \S+`+tt.name+`.log: `+tt.want).MatchString(errs) {
				t.Fatalf("exit %d, stderr %q; want %s", code, errs, tt.want)
			}
			if code, out, _ := runFerry(t, "audit", "show", p); code != 1 || out != "" {
				t.Errorf("show of a tampered log: exit %d, printed %q", code, out)
			}
		})
	}
}

// Rotated files verify as one chain oldest first; out of order they fail
// with a hint.
func TestCLIAuditRotated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{MaxSize: 600, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		l.Observe(event.Event{Kind: event.CheckStarted, App: "hello", Version: "1.0." + string(rune('a'+i))})
	}
	st := l.State()
	l.Close()
	code, out, errs := runFerry(t, "audit", "verify", path+".2", path+".1", path)
	if code != 0 || !strings.HasSuffix(out, " lines, last seq 12 hash "+st.Hash+"\n") {
		t.Fatalf("in order: exit %d, %q %q", code, out, errs)
	}
	code, out, errs = runFerry(t, "audit", "verify", path)
	if code != 0 || !strings.HasSuffix(out, "last seq 12 hash "+st.Hash+"\n") || !strings.Contains(errs, "ferry: note: "+path+" starts at seq ") {
		t.Fatalf("the newest file alone: exit %d, %q %q", code, out, errs)
	}
	code, _, errs = runFerry(t, "audit", "verify", path+".1", path+".2", path)
	if code != 1 || !strings.Contains(errs, "audit.log.2: line 1") || !strings.Contains(errs, "ferry: hint: give rotated files oldest first") {
		t.Fatalf("out of order: exit %d, %q", code, errs)
	}
}

// ferry audit show filters by application, kind and time, prints JSON
// lines that are the log's own lines, and never prints a control
// character from the log.
func TestCLIAuditShow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	orig := exampleLog(t)
	if err := os.WriteFile(p, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runFerry(t, "audit", "show", p, "--app", "hello", "--kind", "install")
	want := "TIME                  KIND                 APP    VERSION  CAUSE\n" +
		"2026-12-01T09:01:00Z  install.started      hello  1.4.2    -\n" +
		"2026-12-01T09:02:00Z  install.rolled_back  hello  1.4.2    health check failed; 1.4.1 runs again\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errs, out, want)
	}
	_, out, _ = runFerry(t, "audit", "show", p, "--since", "2026-12-01T09:30:00Z", "--json")
	ls := strings.SplitAfter(string(orig), "\n")
	if out != strings.Join(ls[6:], "") {
		t.Fatalf("--json --since: %q, want the last three lines of the log", out)
	}
	if _, out, _ = runFerry(t, "audit", "show", p, "--since", "1h"); out != "no events\n" {
		t.Errorf("--since 1h on an old log: %q", out)
	}
	if code, _, errs = runFerry(t, "audit", "show", p, "--since", "yesterday"); code != 1 || !strings.Contains(errs, `bad --since "yesterday"`) {
		t.Errorf("bad --since: exit %d, %q", code, errs)
	}

	hostile := filepath.Join(t.TempDir(), "hostile.log")
	l, err := audit.Open(hostile, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Observe(event.Event{Time: time.Now(), Kind: event.CheckFailed, App: "a\tb", Cause: "x\x1b]0;owned\x07\ny"})
	l.Close()
	_, out, _ = runFerry(t, "audit", "show", hostile)
	if strings.ContainsAny(out, "\x1b\x07\t") || strings.Count(out, "\n") != 2 || !strings.Contains(out, "x?]0;owned??y") {
		t.Errorf("hostile fields printed as %q", out)
	}
}
