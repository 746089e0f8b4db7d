package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// MaxLine is the longest line, in bytes without its "\n", that a log may
// hold. Log shortens an event whose line would be longer.
const MaxLine = 64 << 10

// Genesis is the prev of the first line of a log.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one line of a log: one event, its place in the chain and the
// hash of the line before it.
type Record struct {
	Seq      uint64            `json:"seq"`
	Prev     string            `json:"prev"`
	Time     time.Time         `json:"time"`
	Kind     event.Kind        `json:"kind"`
	App      string            `json:"app"`
	Version  string            `json:"version"`
	Cause    string            `json:"cause"`
	Evidence map[string]string `json:"evidence,omitempty"`
}

// Event returns the event r records.
func (r Record) Event() event.Event {
	return event.Event{Time: r.Time, Kind: r.Kind, App: r.App, Version: r.Version, Cause: r.Cause, Evidence: r.Evidence}
}

// State is the end of a chain: the seq and hash of its last line, or
// (0, Genesis) for a log with no line. The zero State means "unknown".
type State struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Start is the State of a log that has no line yet.
var Start = State{Seq: 0, Hash: Genesis}

func (s State) String() string { return fmt.Sprintf("seq %d hash %s", s.Seq, s.Hash) }

// hashLine is the hash of a line: hex SHA-256 of its bytes without "\n".
func hashLine(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}

// Error is a log that does not verify: the first line where a check
// failed (counted from 1 in the input given to Verify), the seq that line
// should have (0 if unknown) and what is wrong.
type Error struct {
	Line   int
	Seq    uint64
	Reason string
}

func (e *Error) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
}

// Verify reads a log from r and checks every line, starting from the State
// from: the first line must have seq from.Seq+1 and prev from.Hash. With
// the zero State (a file whose predecessor is not at hand, such as a log
// rotated before), the first line's own seq and prev are taken as the
// start, except that a first line with seq 1 must have prev Genesis. It
// returns the State after the last line, and an *Error naming the first bad
// line; a read error is returned wrapped.
func Verify(r io.Reader, from State) (State, error) {
	return Read(r, from, nil)
}

// Read is Verify that also calls fn with each record once its line has
// been checked. An error from fn stops the read and is returned as is.
func Read(r io.Reader, from State, fn func(Record) error) (State, error) {
	if fn == nil {
		return read(r, from, nil)
	}
	return read(r, from, func(rec Record, _ State) error { return fn(rec) })
}

// read is Read whose fn also gets the State after the record's line.
func read(r io.Reader, from State, fn func(Record, State) error) (State, error) {
	br := bufio.NewReaderSize(r, MaxLine+1)
	st := from
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return st, nil
		}
		want := uint64(0)
		if st != (State{}) {
			want = st.Seq + 1
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return st, &Error{n, want, fmt.Sprintf("longer than %d bytes", MaxLine)}
		case errors.Is(err, io.EOF):
			return st, &Error{n, want, "no newline at the end: a torn write (the log repairs it when it is next opened) or a truncated file"}
		case err != nil:
			return st, fmt.Errorf("read line %d: %w", n, err)
		}
		line = line[:len(line)-1]
		rec, reason := check(line, st, n)
		if reason != "" {
			return st, &Error{n, want, reason}
		}
		st = State{Seq: rec.Seq, Hash: hashLine(line)}
		if fn != nil {
			if err := fn(rec, st); err != nil {
				return st, err
			}
		}
	}
}

// check parses line n and checks it against the State before it; it
// returns why the line is bad, or "".
func check(line []byte, st State, n int) (Record, string) {
	rec, reason := parse(line)
	if reason != "" {
		return rec, reason
	}
	if st == (State{}) { // unknown start: the first line says where it is
		st = State{Seq: rec.Seq - 1, Hash: rec.Prev}
		if rec.Seq == 1 {
			st.Hash = Genesis
		}
	}
	switch {
	case rec.Seq != st.Seq+1:
		return rec, fmt.Sprintf("seq is %d, want %d: a line was deleted, inserted or moved", rec.Seq, st.Seq+1)
	case rec.Prev != st.Hash && st.Seq == 0:
		return rec, fmt.Sprintf("prev is %s, want %s (the genesis value)", rec.Prev, Genesis)
	case rec.Prev != st.Hash && n == 1:
		return rec, fmt.Sprintf("prev is %s, but the chain before it ends with hash %s: the files are not in order, or a line was changed", rec.Prev, st.Hash)
	case rec.Prev != st.Hash:
		return rec, fmt.Sprintf("prev is %s, but line %d hashes to %s: line %d was changed, or this line's prev was", rec.Prev, n-1, st.Hash, n-1)
	}
	return rec, ""
}

// ParseLine checks one line on its own (without its "\n"), as Verify
// checks each line before it looks at the chain: the canonical encoding of
// a record, a seq from 1, a prev of 64 hex digits and a kind. It returns
// the record and the line's hash. A server receiving lines one batch at a
// time uses it, and checks the links between lines itself.
func ParseLine(line []byte) (Record, string, error) {
	if len(line) > MaxLine {
		return Record{}, "", fmt.Errorf("longer than %d bytes", MaxLine)
	}
	rec, reason := parse(line)
	if reason != "" {
		return Record{}, "", errors.New(reason)
	}
	return rec, hashLine(line), nil
}

// parse decodes one line strictly: known fields only, the canonical
// encoding of its own content, a seq from 1, a prev of 64 hex digits and a
// kind.
func parse(line []byte) (Record, string) {
	var rec Record
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&rec); err != nil {
		return rec, "not a log record: " + err.Error()
	}
	if b, err := json.Marshal(rec); err != nil || !bytes.Equal(b, line) {
		return rec, "not in the canonical form of the format (fields, order, spacing or escaping changed)"
	}
	switch {
	case rec.Seq == 0:
		return rec, "seq is 0; seqs start at 1"
	case !isHash(rec.Prev):
		return rec, fmt.Sprintf("prev %q is not 64 lowercase hex digits", rec.Prev)
	case rec.Kind == "":
		return rec, "no kind"
	}
	return rec, ""
}

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// VerifyKnown is Verify that also checks the log against known, the last
// State this installation reported to the server: the line with seq
// known.Seq must hash to known.Hash (else the log was rewritten from there
// on), and the log must not end before it (else its tail was truncated).
// The log must reach back to known.Seq; if it starts later, the check
// cannot be made and fails (give the rotated files before it too, joined
// with io.MultiReader; line numbers then count across them).
//
// A known State with seq 0 (nothing reported yet) checks nothing more than
// Verify.
func VerifyKnown(r io.Reader, from, known State) (State, error) {
	if known.Seq == 0 {
		return Verify(r, from)
	}
	checked := from == known
	n := 0
	st, err := read(r, from, func(rec Record, end State) error {
		n++
		start := State{Seq: rec.Seq - 1, Hash: rec.Prev}
		if n == 1 && start.Seq > known.Seq {
			return &Error{n, rec.Seq, fmt.Sprintf("the log starts after seq %d, the last one the installation reported: give the rotated files before it too", known.Seq)}
		}
		if n == 1 && start.Seq == known.Seq && start.Hash != known.Hash {
			return &Error{n, rec.Seq, fmt.Sprintf("prev is %s, but the installation reported %s for seq %d: the log was rewritten", rec.Prev, known.Hash, known.Seq)}
		}
		if end.Seq == known.Seq {
			if end.Hash != known.Hash {
				return &Error{n, rec.Seq, fmt.Sprintf("hashes to %s, but the installation reported %s: the log was rewritten from here on", end.Hash, known.Hash)}
			}
			checked = true
		}
		checked = checked || start.Seq == known.Seq
		return nil
	})
	if err == nil && !checked {
		err = &Error{n + 1, known.Seq, fmt.Sprintf("missing: the log ends at seq %d, but the installation reported seq %d: its tail was truncated", st.Seq, known.Seq)}
	}
	return st, err
}
