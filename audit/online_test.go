package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// TestOnAppendParseLine: OnAppend gets every line as written, in order,
// with the State after it, and ParseLine gives back the record and the
// hash that the chain has; a changed line is refused.
func TestOnAppendParseLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var lines [][]byte
	var states []State
	l, err := Open(path, Options{OnAppend: func(line []byte, st State) {
		lines, states = append(lines, bytes.Clone(line)), append(states, st)
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		l.Observe(event.Event{Time: time.Now(), Kind: event.InstallDone, App: "hello", Version: v})
	}
	if l.State() != states[2] {
		t.Fatalf("State %v, last OnAppend state %v", l.State(), states[2])
	}
	l.Close()
	file, _ := os.ReadFile(path)
	if want := string(bytes.Join(lines, []byte("\n"))) + "\n"; string(file) != want {
		t.Fatalf("OnAppend lines differ from the file:\n%s\n%s", want, file)
	}
	prev := Genesis
	for i, line := range lines {
		rec, hash, err := ParseLine(line)
		if err != nil || rec.Seq != uint64(i+1) || rec.Prev != prev || hash != states[i].Hash {
			t.Fatalf("line %d: %+v %s %v", i+1, rec, hash, err)
		}
		prev = hash
	}
	bad := strings.Replace(string(lines[0]), "1.0.0", "1.0.1", 1)
	if _, h, err := ParseLine([]byte(bad)); err != nil || h == states[0].Hash {
		t.Fatalf("an edited line keeps its hash: %v", err)
	}
	for _, bad := range []string{string(lines[0]) + " ", `{"seq":0}`, "", strings.Repeat("x", MaxLine+1)} {
		if _, _, err := ParseLine([]byte(bad)); err == nil {
			t.Errorf("ParseLine(%.40q) accepted", bad)
		}
	}
}
