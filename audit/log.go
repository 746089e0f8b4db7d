package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/lockfile"
	"github.com/ferry-updates/ferry/internal/safefile"
)

// Repaired is the kind of the line Open appends after cutting off a torn
// last line: Evidence["bytes"] is how many bytes were cut and
// Evidence["sha256"] their hash.
const Repaired event.Kind = "audit.repaired"

// Options tune a Log. The zero value is the default.
type Options struct {
	// MaxSize is the size in bytes past which the file is rotated (0: 8 MiB).
	MaxSize int64
	// Keep is how many rotated files are kept, FILE.1 to FILE.Keep (0: 4).
	Keep int
	// Now is the clock for events without a time and for the repair line
	// (nil: time.Now).
	Now func() time.Time
	// OnAppend, if set, is called with each line (without its "\n") and
	// the State after it, once the line is durable, with the log's lock
	// held: so in the order of the chain. A reporter queues the lines it
	// is given. It must not call the Log.
	OnAppend func(line []byte, st State)
}

// Log is an event.Observer that appends every event to a file as one line
// of the chain (see the package doc). It is safe for concurrent use.
type Log struct {
	path string
	opts Options
	lock io.Closer

	mu      sync.Mutex
	f       *os.File // nil once closed or after a failure that makes appending unsafe
	size    int64
	state   State
	err     error // the first append error
	dropped int   // events not written since
}

var _ event.Observer = (*Log)(nil)

// errClosed is the error of an Observe after Close.
var errClosed = errors.New("log is closed")

// Open opens the log at path for appending, creating it (mode 0600) if
// needed, and takes path+".lock" so that no other process writes it. It
// verifies the file and resumes the chain from its last line (or from the
// last line of path+".1" if path has none yet). A torn last line, the
// partial write of a crash, is cut off and the repair appended as an
// Repaired line; any other damage is an error (*Error inside) and the file
// is left as it is.
func Open(path string, opts Options) (*Log, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = 8 << 20
	}
	if opts.Keep <= 0 {
		opts.Keep = 4
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lock, err := lockfile.Lock(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l := &Log{path: path, opts: opts, lock: lock}
	torn, err := l.resume()
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open audit log %s: %w", path, err)
	}
	if len(torn) > 0 {
		l.Observe(event.Event{Kind: Repaired,
			Cause:    fmt.Sprintf("cut off a torn last line of %d bytes, the write a crash interrupted", len(torn)),
			Evidence: map[string]string{"bytes": strconv.Itoa(len(torn)), "sha256": hashLine(torn)}})
		if err := l.Err(); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// resume opens the file, verifies it, cuts off a torn last line (which it
// returns) and sets the state to the end of the chain.
func (l *Log) resume() (torn []byte, err error) {
	_, statErr := os.Lstat(l.path)
	if l.f, err = safefile.OpenPartial(l.path); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.f.Close()
		}
	}()
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := atomicfile.SyncDir(filepath.Dir(l.path)); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(l.f)
	if err != nil {
		return nil, err
	}
	cut := bytes.LastIndexByte(data, '\n') + 1
	if l.state, err = l.chainStart(cut > 0); err != nil {
		return nil, err
	}
	if l.state, err = Verify(bytes.NewReader(data[:cut]), l.state); err != nil {
		return nil, err
	}
	if torn = data[cut:]; len(torn) > 0 {
		if err := l.f.Truncate(int64(cut)); err != nil {
			return nil, err
		}
		if err := l.f.Sync(); err != nil {
			return nil, err
		}
	}
	l.size = int64(cut)
	_, err = l.f.Seek(l.size, io.SeekStart)
	return torn, err
}

// chainStart is where the current file's chain starts: unknown (its first
// line says) if it has lines, else the end of the rotated file before it,
// else the start of a new log.
func (l *Log) chainStart(hasLines bool) (State, error) {
	if hasLines {
		return State{}, nil
	}
	f, err := os.Open(l.path + ".1")
	if errors.Is(err, fs.ErrNotExist) {
		return Start, nil
	}
	if err != nil {
		return State{}, err
	}
	defer f.Close()
	st, err := Verify(f, State{})
	if err != nil {
		return State{}, fmt.Errorf("%s.1: %w", l.path, err)
	}
	return st, nil
}

// Observe appends e as the next line and fsyncs the file; it blocks for
// that one write (and, once per MaxSize bytes, a rotation). It never
// panics on any event. An error is kept for Err and the event counted as
// not written; after a failed fsync (or a write it cannot take back) the
// log stops writing.
func (l *Log) Observe(e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := errClosed
	if l.f != nil {
		err = l.append(e)
	}
	if err != nil {
		if l.err == nil {
			l.err = err
		}
		l.dropped++
	}
}

// Err reports the first error of an Observe, with the number of events
// not written since; nil if every event was written.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		return nil
	}
	return fmt.Errorf("audit log %s: %d event(s) not written: %w", l.path, l.dropped, l.err)
}

// State is the end of the chain written so far: what a reporter sends the
// server so that a later rewrite of the log is caught (VerifyKnown).
func (l *Log) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Close closes the file and releases the lock. Events observed afterwards
// are not written (Err says so).
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	if l.lock != nil {
		if lerr := l.lock.Close(); err == nil {
			err = lerr
		}
		l.lock = nil
	}
	return err
}

// append writes e as the next line, rotating first if it would not fit.
func (l *Log) append(e event.Event) error {
	line, err := l.encode(e)
	if err != nil {
		return err
	}
	if l.size > 0 && l.size+int64(len(line))+1 > l.opts.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		// Take back a partial write so the chain stays whole; if that
		// fails too, writing more would bury a torn line.
		if terr := l.f.Truncate(l.size); terr != nil {
			l.stop()
			return fmt.Errorf("append: %w (and taking it back: %v)", err, terr)
		}
		_, serr := l.f.Seek(l.size, io.SeekStart)
		if serr != nil {
			l.stop()
		}
		return fmt.Errorf("append: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		l.stop() // after a failed fsync the file's content is unknown
		return fmt.Errorf("append: fsync: %w", err)
	}
	l.size += int64(len(line)) + 1
	l.state = State{Seq: l.state.Seq + 1, Hash: hashLine(line)}
	if l.opts.OnAppend != nil {
		l.opts.OnAppend(line, l.state)
	}
	return nil
}

// stop closes the file after a failure that makes appending unsafe.
func (l *Log) stop() {
	l.f.Close()
	l.f = nil
}

// encode makes the next line for e. A line that would be longer than
// MaxLine keeps its kind, app and version (cut to 256 bytes) and the first
// KiB of its cause, and loses its evidence.
func (l *Log) encode(e event.Event) ([]byte, error) {
	t := e.Time
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		t = l.opts.Now() // a time JSON cannot hold, or none
	}
	rec := Record{Seq: l.state.Seq + 1, Prev: l.state.Hash, Time: t.UTC(), Kind: event.Kind(valid(string(e.Kind))),
		App: valid(e.App), Version: valid(e.Version), Cause: valid(e.Cause)}
	if rec.Kind == "" {
		rec.Kind = "unknown"
	}
	if len(e.Evidence) > 0 {
		rec.Evidence = make(map[string]string, len(e.Evidence))
		for k, v := range e.Evidence {
			rec.Evidence[valid(k)] = valid(v)
		}
	}
	line, err := json.Marshal(rec)
	if err == nil && len(line) > MaxLine {
		rec.App, rec.Version, rec.Cause = cut(rec.App, 256), cut(rec.Version, 256), cut(rec.Cause, 1024)
		rec.Kind = event.Kind(cut(string(rec.Kind), 256))
		rec.Evidence = map[string]string{"truncated": "the event was longer than the log's line limit"}
		line, err = json.Marshal(rec)
	}
	return line, err
}

// valid replaces invalid UTF-8 in s with U+FFFD, as encoding/json would,
// so that the line is the canonical encoding of what it holds.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// cut shortens s to at most n bytes of valid UTF-8.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// rotate renames FILE.i to FILE.i+1 (the oldest is replaced) and FILE to
// FILE.1, and starts a new FILE. If a rename fails, it keeps writing the
// file it has, and tries again at the next append.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		l.f = nil
		return fmt.Errorf("rotate: %w", err)
	}
	l.f = nil
	err := l.shift()
	f, oerr := safefile.OpenPartial(l.path)
	if oerr != nil {
		return fmt.Errorf("rotate: %w", errors.Join(err, oerr))
	}
	size, serr := f.Seek(0, io.SeekEnd)
	if serr != nil {
		f.Close()
		return fmt.Errorf("rotate: %w", errors.Join(err, serr))
	}
	l.f, l.size = f, size
	if err == nil {
		err = atomicfile.SyncDir(filepath.Dir(l.path))
	}
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	return nil
}

func (l *Log) shift() error {
	for i := l.opts.Keep - 1; i >= 1; i-- {
		old := l.path + "." + strconv.Itoa(i)
		err := atomicfile.Rename(old, l.path+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return atomicfile.Rename(l.path, l.path+".1")
}
