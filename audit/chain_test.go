package audit

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// testEvents are n events with distinct, deterministic content.
func testEvents(n int) []event.Event {
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	kinds := []event.Kind{event.CheckStarted, event.CheckOffered, event.DownloadDone, event.InstallDone, event.HealthPassed}
	var out []event.Event
	for i := range n {
		out = append(out, event.Event{Time: at.Add(time.Duration(i) * time.Second), Kind: kinds[i%len(kinds)],
			App: "hello", Version: fmt.Sprintf("1.4.%d", i), Cause: fmt.Sprintf("step %d", i),
			Evidence: map[string]string{"n": fmt.Sprint(i)}})
	}
	return out
}

// writeLog writes events through a Log into a new file and returns its
// bytes and final State.
func writeLog(t *testing.T, events []event.Event) ([]byte, State) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		l.Observe(e)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	st := l.State()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return readFile(t, path), st
}

func lines(b []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func join(ls [][]byte) []byte {
	var b []byte
	for _, l := range ls {
		b = append(b, l...)
		if !bytes.HasSuffix(l, []byte("\n")) {
			b = append(b, '\n')
		}
	}
	return b
}

// edit returns line with old replaced by new (once), which must occur.
func edit(t *testing.T, line []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(line, []byte(old)) {
		t.Fatalf("%q not in %s", old, line)
	}
	return bytes.Replace(line, []byte(old), []byte(new), 1)
}

// reseal rewrites the prev of line to the hash of before.
func reseal(t *testing.T, line, before []byte) []byte {
	t.Helper()
	rec, reason := parse(bytes.TrimSuffix(line, []byte("\n")))
	if reason != "" {
		t.Fatal(reason)
	}
	return edit(t, line, rec.Prev, hashLine(bytes.TrimSuffix(before, []byte("\n"))))
}

// A log written by Log verifies from Start, reads back as the events
// observed, and its final State is the Log's.
func TestRoundTrip(t *testing.T) {
	events := testEvents(7)
	b, st := writeLog(t, events)
	var got []event.Event
	end, err := Read(bytes.NewReader(b), Start, func(r Record) error { got = append(got, r.Event()); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if end != st || st.Seq != 7 {
		t.Fatalf("Read ends at %v, Log at %v; want seq 7", end, st)
	}
	for i, e := range got {
		w := events[i]
		if !e.Time.Equal(w.Time) || e.Kind != w.Kind || e.App != w.App || e.Version != w.Version || e.Cause != w.Cause || e.Evidence["n"] != w.Evidence["n"] {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
	if !bytes.HasPrefix(b, []byte(`{"seq":1,"prev":"`+Genesis+`","time":"2026-12-02T00:00:00Z","kind":"check.started"`)) {
		t.Errorf("first line: %s", lines(b)[0])
	}
}

// Every kind of edit of a six-line log is found, at the line where the
// chain breaks; the original passes the same checks (R65).
func TestMutationsDetected_R65(t *testing.T) {
	orig, known := writeLog(t, testEvents(6))
	if _, err := VerifyKnown(bytes.NewReader(orig), Start, known); err != nil {
		t.Fatalf("the original does not verify: %v", err)
	}
	forged := func(ls [][]byte) []byte { // a well-formed line 3 chained to line 2
		return []byte(fmt.Sprintf(`{"seq":3,"prev":"%s","time":"2026-12-02T00:00:02Z","kind":"install.done","app":"hello","version":"6.6.6","cause":""}`+"\n", hashLine(bytes.TrimSuffix(ls[1], []byte("\n")))))
	}
	tests := []struct {
		name   string
		mutate func(ls [][]byte) [][]byte
		line   int    // the line Verify names
		want   string // in the reason
	}{
		{"edit a field", func(ls [][]byte) [][]byte { ls[2] = edit(t, ls[2], `"1.4.2"`, `"1.4.9"`); return ls }, 4, "line 3 was changed"},
		{"edit the evidence", func(ls [][]byte) [][]byte { ls[0] = edit(t, ls[0], `"n":"0"`, `"n":"1"`); return ls }, 2, "line 1 was changed"},
		{"edit a seq", func(ls [][]byte) [][]byte { ls[2] = edit(t, ls[2], `"seq":3`, `"seq":4`); return ls }, 3, "seq is 4, want 3"},
		{"respace a line", func(ls [][]byte) [][]byte { ls[2] = edit(t, ls[2], `"kind":`, `"kind": `); return ls }, 3, "canonical"},
		{"add a field", func(ls [][]byte) [][]byte { ls[2] = edit(t, ls[2], `"seq":3,`, `"seq":3,"x":1,`); return ls }, 3, "unknown field"},
		{"delete a line", func(ls [][]byte) [][]byte { return append(ls[:2:2], ls[3:]...) }, 3, "seq is 4, want 3"},
		{"delete the first line", func(ls [][]byte) [][]byte { return ls[1:] }, 1, "seq is 2, want 1"},
		{"insert a forged line", func(ls [][]byte) [][]byte {
			return append(append(ls[:2:2], forged(ls)), ls[2:]...)
		}, 4, "seq is 3, want 4"},
		{"insert a copy", func(ls [][]byte) [][]byte { return append(append(ls[:2:2], ls[1]), ls[2:]...) }, 3, "seq is 2, want 3"},
		{"swap two lines", func(ls [][]byte) [][]byte { ls[2], ls[3] = ls[3], ls[2]; return ls }, 3, "seq is 4, want 3"},
		{"move the first line last", func(ls [][]byte) [][]byte { return append(ls[1:], ls[0]) }, 1, "seq is 2, want 1"},
		{"re-seal an edit", func(ls [][]byte) [][]byte {
			ls[2] = edit(t, ls[2], `"1.4.2"`, `"1.4.9"`)
			ls[3] = reseal(t, ls[3], ls[2])
			return ls
		}, 5, "line 4 was changed"},
		{"forge the genesis", func(ls [][]byte) [][]byte { ls[0] = edit(t, ls[0], Genesis, strings.Repeat("1", 64)); return ls }, 1, "genesis"},
		{"tear the last line", func(ls [][]byte) [][]byte { ls[5] = ls[5][:40]; return ls }, 6, "no newline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := tt.mutate(lines(bytes.Clone(orig)))
			b := join(ls)
			if tt.want == "no newline" {
				b = b[:len(b)-1]
			}
			_, err := Verify(bytes.NewReader(b), Start)
			var ve *Error
			if !errors.As(err, &ve) || ve.Line != tt.line || !strings.Contains(ve.Reason, tt.want) {
				t.Fatalf("Verify: %v; want line %d: ...%s...", err, tt.line, tt.want)
			}
			if ve.Seq != uint64(tt.line) {
				t.Errorf("error names seq %d, want %d (the seq line %d should have)", ve.Seq, tt.line, tt.line)
			}
			if _, err := VerifyKnown(bytes.NewReader(b), Start, known); err == nil {
				t.Error("VerifyKnown accepts it")
			}
		})
	}
}

// What a hash chain alone cannot find, a truncated or rewritten tail,
// VerifyKnown finds against the last (seq, hash) the installation
// reported (R65).
func TestTruncatedTailCaught_R65(t *testing.T) {
	orig, known := writeLog(t, testEvents(6))
	ls := lines(orig)
	for keep := 0; keep < len(ls); keep++ {
		b := join(ls[:keep])
		if _, err := Verify(bytes.NewReader(b), Start); err != nil {
			t.Fatalf("%d lines: Verify alone: %v (the chain of a prefix is whole)", keep, err)
		}
		_, err := VerifyKnown(bytes.NewReader(b), Start, known)
		var ve *Error
		if !errors.As(err, &ve) || ve.Line != keep+1 || ve.Seq != 6 || !strings.Contains(ve.Reason, "truncated") {
			t.Errorf("%d of 6 lines: VerifyKnown: %v; want line %d (seq 6): ...truncated", keep, err, keep+1)
		}
	}
	// Rewritten tail: line 4 edited and every later prev recomputed.
	rw := lines(bytes.Clone(orig))
	rw[3] = edit(t, rw[3], `"1.4.3"`, `"1.4.9"`)
	rw[4] = reseal(t, rw[4], rw[3])
	rw[5] = reseal(t, rw[5], rw[4])
	b := join(rw)
	if _, err := Verify(bytes.NewReader(b), Start); err != nil {
		t.Fatalf("a rewritten tail should verify on its own (that is the limit of a chain): %v", err)
	}
	_, err := VerifyKnown(bytes.NewReader(b), Start, known)
	var ve *Error
	if !errors.As(err, &ve) || ve.Line != 6 || !strings.Contains(ve.Reason, "rewritten") {
		t.Errorf("rewritten tail: %v; want line 6: ...rewritten", err)
	}
	// A State reported earlier catches a rewrite of the lines up to it,
	// and accepts lines appended since.
	mid := State{Seq: 4, Hash: hashLine(bytes.TrimSuffix(ls[3], []byte("\n")))}
	if _, err := VerifyKnown(bytes.NewReader(orig), Start, mid); err != nil {
		t.Errorf("the original against seq 4: %v", err)
	}
	if _, err := VerifyKnown(bytes.NewReader(b), Start, mid); !errors.As(err, &ve) || ve.Line != 4 {
		t.Errorf("rewritten from line 4 against seq 4: %v; want line 4", err)
	}
	// A log that starts after the reported seq cannot be checked.
	if _, err := VerifyKnown(bytes.NewReader(join(ls[5:])), State{}, mid); err == nil || !strings.Contains(err.Error(), "rotated files") {
		t.Errorf("a log starting after the reported seq: %v; want a refusal", err)
	}
	// Nothing reported yet: any valid log, also one that starts later.
	for _, k := range []State{Start, {}} {
		if _, err := VerifyKnown(bytes.NewReader(join(ls[3:])), State{}, k); err != nil {
			t.Errorf("against %v: %v", k, err)
		}
	}
	// One that starts right after it is checked through its first prev.
	if _, err := VerifyKnown(bytes.NewReader(join(ls[4:])), State{}, mid); err != nil {
		t.Errorf("a log starting right after the reported seq: %v", err)
	}
	if _, err := VerifyKnown(bytes.NewReader(join(rw[4:])), State{}, State{Seq: 4, Hash: strings.Repeat("a", 64)}); err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("a log whose first prev contradicts the reported hash: %v", err)
	}
}

// Every byte flip and every truncation of a valid log is refused against
// its known end (the "mangle" test).
func TestEveryByteFlipRefused_R65(t *testing.T) {
	orig, known := writeLog(t, testEvents(3))
	for i := range orig {
		b := bytes.Clone(orig)
		b[i] ^= 0x01
		if _, err := VerifyKnown(bytes.NewReader(b), Start, known); err == nil {
			t.Fatalf("flip of byte %d accepted: %s", i, b)
		}
		if _, err := VerifyKnown(bytes.NewReader(orig[:i]), Start, known); err == nil {
			t.Fatalf("truncation to %d bytes accepted", i)
		}
	}
}

// A file whose predecessor is not at hand verifies from the seq and prev
// its first line carries; a line of MaxLine+1 bytes is refused.
func TestVerifyUnknownStartAndBounds(t *testing.T) {
	orig, known := writeLog(t, testEvents(5))
	ls := lines(orig)
	st, err := Verify(bytes.NewReader(join(ls[2:])), State{})
	if err != nil || st != known {
		t.Fatalf("from line 3: %v, %v; want %v", st, err, known)
	}
	if st, err := Verify(bytes.NewReader(nil), Start); err != nil || st != Start {
		t.Fatalf("empty log: %v, %v", st, err)
	}
	long := append(bytes.Repeat([]byte("x"), MaxLine+1), '\n')
	var ve *Error
	if _, err := Verify(bytes.NewReader(long), Start); !errors.As(err, &ve) || !strings.Contains(ve.Reason, "longer than") {
		t.Fatalf("a long line: %v", err)
	}
	if _, err := Verify(strings.NewReader("\n"), Start); !errors.As(err, &ve) || ve.Line != 1 {
		t.Fatalf("an empty line: %v", err)
	}
}
