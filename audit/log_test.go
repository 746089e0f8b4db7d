package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/lockfile"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openLog(t *testing.T, path string, o Options) *Log {
	t.Helper()
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// verifyFiles verifies files in order as one chain and returns its end.
func verifyFiles(t *testing.T, files ...string) (State, error) {
	t.Helper()
	st := State{}
	for _, f := range files {
		var err error
		if st, err = Verify(bytes.NewReader(readFile(t, f)), st); err != nil {
			return st, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	return st, nil
}

// Reopening a log continues its chain.
func TestReopenContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	events := testEvents(6)
	for _, part := range [][]event.Event{events[:3], events[3:]} {
		l := openLog(t, path, Options{})
		for _, e := range part {
			l.Observe(e)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Verify(bytes.NewReader(readFile(t, path)), Start)
	if err != nil || st.Seq != 6 {
		t.Fatalf("after reopening: %v, %v; want 6 lines", st, err)
	}
}

// Past its size bound the log rotates: FILE.3 FILE.2 FILE.1 FILE verify as
// one chain, each file verifies alone from its first line, FILE.4 is never
// kept, and files given out of order do not verify (R65).
func TestRotationKeepsChain_R65(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{MaxSize: 700, Keep: 3})
	for _, e := range testEvents(40) {
		l.Observe(e)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	files := []string{path + ".3", path + ".2", path + ".1", path}
	st, err := verifyFiles(t, files...)
	if err != nil || st != l.State() {
		t.Fatalf("across rotations: %v, %v; want %v", st, err, l.State())
	}
	for _, f := range files {
		if _, err := verifyFiles(t, f); err != nil {
			t.Errorf("alone: %v", err)
		}
		if fi, _ := os.Stat(f); fi.Size() > 700 {
			t.Errorf("%s has %d bytes, more than the bound", f, fi.Size())
		}
	}
	if _, err := os.Stat(path + ".4"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.4 kept: %v", path, err)
	}
	_, err = verifyFiles(t, path+".3", path+".1", path+".2", path)
	var ve *Error
	if !errors.As(err, &ve) || ve.Line != 1 || !strings.Contains(err.Error(), "audit.log.1: line 1") {
		t.Errorf("out of order: %v; want audit.log.1: line 1", err)
	}
}

// A crash between renaming FILE to FILE.1 and writing the new FILE's first
// line: Open continues from the end of FILE.1.
func TestCrashAfterRotateRename(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	for _, e := range testEvents(3) {
		l.Observe(e)
	}
	l.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, path, Options{})
	l.Observe(testEvents(4)[3])
	l.Close()
	st, err := verifyFiles(t, path+".1", path)
	if err != nil || st.Seq != 4 {
		t.Fatalf("%v, %v; want seq 4", st, err)
	}
}

// A crash mid-write leaves a torn last line: Verify names it, Open cuts off
// exactly that partial line, records the repair in the chain and goes on
// (R65).
func TestTornLastLineRepaired_R65(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	events := testEvents(6)
	events[5].Cause = strings.Repeat("long ", 600) // longer than what is written after the repair
	orig, _ := writeLog(t, events)
	complete := orig[:bytes.LastIndexByte(orig[:len(orig)-1], '\n')+1] // lines 1-5
	torn := lines(orig)[5][:2000]                                      // what a crash left of line 6
	if err := os.WriteFile(path, append(bytes.Clone(complete), torn...), 0o600); err != nil {
		t.Fatal(err)
	}
	var ve *Error
	if _, err := Verify(bytes.NewReader(readFile(t, path)), Start); !errors.As(err, &ve) || ve.Line != 6 || !strings.Contains(ve.Reason, "torn") {
		t.Fatalf("torn file: %v; want line 6 torn", err)
	}
	l := openLog(t, path, Options{})
	l.Observe(testEvents(8)[7])
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b := readFile(t, path)
	if !bytes.HasPrefix(b, complete) {
		t.Fatal("the repair changed a complete line")
	}
	var recs []Record
	st, err := Read(bytes.NewReader(b), Start, func(r Record) error { recs = append(recs, r); return nil })
	if err != nil || st.Seq != 7 {
		t.Fatalf("after repair: %v, %v; want 7 lines", st, err)
	}
	rep := recs[5]
	if rep.Kind != Repaired || rep.Evidence["bytes"] != "2000" || rep.Evidence["sha256"] != hashLine(torn) {
		t.Errorf("repair line = %+v", rep)
	}
	if recs[6].Version != "1.4.7" {
		t.Errorf("line 7 = %+v", recs[6])
	}
}

// Any other damage is not repaired: Open refuses the file, names the line
// and leaves it as it is.
func TestOpenRefusesDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	orig, _ := writeLog(t, testEvents(4))
	ls := lines(orig)
	ls[1] = edit(t, ls[1], `"1.4.1"`, `"1.4.9"`)
	bad := join(ls)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	var ve *Error
	if !errors.As(err, &ve) || ve.Line != 3 {
		t.Fatalf("Open of an edited log: %v; want line 3", err)
	}
	if !bytes.Equal(readFile(t, path), bad) {
		t.Error("Open changed a log it refused")
	}
	// And the lock was released: a fixed file opens.
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	openLog(t, path, Options{})
}

// Many goroutines observing at once make one valid chain holding every
// event once (R65).
func TestConcurrentObserve_R65(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{MaxSize: 16 << 10, Keep: 100})
	const workers, each = 16, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Observe(event.Event{Kind: event.CheckStarted, App: fmt.Sprintf("app%d", w), Version: fmt.Sprint(i)})
			}
		}()
	}
	wg.Wait()
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := 100; i >= 1; i-- {
		if _, err := os.Stat(fmt.Sprintf("%s.%d", path, i)); err == nil {
			files = append(files, fmt.Sprintf("%s.%d", path, i))
		}
	}
	files = append(files, path)
	seen := map[string]bool{}
	st := Start
	for _, f := range files {
		var err error
		st, err = Read(bytes.NewReader(readFile(t, f)), st, func(r Record) error {
			k := r.App + "/" + r.Version
			if seen[k] {
				return fmt.Errorf("%s twice", k)
			}
			seen[k] = true
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if st.Seq != workers*each || len(seen) != workers*each || len(files) < 2 {
		t.Fatalf("%d lines, %d distinct events in %d files; want %d in several", st.Seq, len(seen), len(files), workers*each)
	}
}

// One writer per file: a second Open is refused while the first holds it.
func TestOneWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	if _, err := Open(path, Options{}); !errors.Is(err, lockfile.ErrLocked) {
		t.Fatalf("second Open: %v; want ErrLocked", err)
	}
	l.Close()
	openLog(t, path, Options{})
}

// An append that fails is kept for Err, with the count of events not
// written, and the chain on disk stays whole.
func TestAppendErrorKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	l.Observe(testEvents(1)[0])
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	l.f.Close() // the disk goes away under the log
	l.Observe(testEvents(2)[1])
	l.Observe(testEvents(3)[2])
	err := l.Err()
	if err == nil || !strings.Contains(err.Error(), "2 event(s) not written") || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Err = %v; want 2 events not written, wrapping the write error", err)
	}
	if st, err := Verify(bytes.NewReader(readFile(t, path)), Start); err != nil || st.Seq != 1 {
		t.Fatalf("on disk: %v, %v; want the one line written", st, err)
	}
	l.Close()
	l2 := openLog(t, filepath.Join(t.TempDir(), "b.log"), Options{})
	l2.Close()
	l2.Observe(testEvents(1)[0])
	if err := l2.Err(); !errors.Is(err, errClosed) {
		t.Fatalf("Observe after Close: Err = %v", err)
	}
}

// Observe writes every event it is given, however odd: no time, a time
// JSON cannot hold, no kind, invalid UTF-8, an event far longer than a
// line may be. Each becomes a line that verifies.
func TestOddEventsStillLogged(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{Now: func() time.Time { return now }})
	huge := strings.Repeat("\x01<&", MaxLine)
	for _, e := range []event.Event{
		{},
		{Kind: event.CheckFailed, Time: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Kind: event.CheckFailed, Cause: "bad \xff utf-8", Evidence: map[string]string{"\xfe": "\n\"x\""}},
		{Kind: event.DownloadRejected, App: huge, Cause: huge, Evidence: map[string]string{"a": huge, "b": huge}},
		{Kind: event.CheckFailed, Time: now.In(time.FixedZone("x", 3600))},
	} {
		l.Observe(e)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	var recs []Record
	if _, err := Read(bytes.NewReader(readFile(t, path)), Start, func(r Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[0].Kind != "unknown" || !recs[0].Time.Equal(now) || !recs[1].Time.Equal(now) ||
		recs[3].Evidence["truncated"] == "" || len(recs[3].Cause) > 1024 || !recs[4].Time.Equal(now) {
		t.Fatalf("records: %+v", recs)
	}
}
