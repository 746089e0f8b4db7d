package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// Defaults of QueueOptions.
const (
	DefaultMaxCount = 100000
	DefaultMaxBytes = 64 << 20
)

// QueueOptions bound a queue. The zero value is the default.
type QueueOptions struct {
	MaxCount int   // lines kept at most (0: DefaultMaxCount)
	MaxBytes int64 // bytes kept at most (0: DefaultMaxBytes)
}

// Item is one queued audit line with its place in the chain.
type Item struct {
	Seq  uint64
	Prev string
	Hash string
	Line []byte
}

// State returns the chain's State after the item.
func (it Item) State() audit.State { return audit.State{Seq: it.Seq, Hash: it.Hash} }

// Stats describe a queue.
type Stats struct {
	Depth        int         `json:"depth"`         // lines not yet acknowledged
	Bytes        int64       `json:"bytes"`         // their size
	Dropped      int         `json:"dropped"`       // lines dropped by the bound, ever
	Acked        audit.State `json:"acked"`         // the last line the server acknowledged
	LastDelivery time.Time   `json:"last_delivery"` // when it did (zero: never)
	// LastError is why the last send failed, one line, cleared by the next
	// delivery (a 409 or 403 is a finding the operator must see, R68).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"` // when (zero: none)
}

// Queue is a bounded on-disk queue of audit lines, in a directory of
// segment files (seg-SEQ.q, SEQ the first line's seq) and a state file
// (state.json: the last acknowledged line, the dropped count). A line is
// on disk (fsynced) when Append returns; it is removed only by Ack, after
// the server acknowledged it, or by the bound, which drops the oldest
// segment and counts its lines. It is safe for concurrent use by one
// process (the agent's state-directory lock keeps others out).
type Queue struct {
	dir  string
	opts QueueOptions

	mu    sync.Mutex
	segs  []*segment
	cur   *os.File // the segment appended to; nil: start a new one
	state queueState
}

type segment struct {
	name        string
	first, last uint64
	count       int
	bytes       int64
}

type queueState struct {
	Acked          audit.State `json:"acked"`
	Dropped        int         `json:"dropped"`
	DroppedThrough uint64      `json:"dropped_through"`
	LastDelivery   time.Time   `json:"last_delivery"`
	LastError      string      `json:"last_error,omitempty"`
	LastErrorAt    time.Time   `json:"last_error_at,omitzero"`
}

const stateFile = "state.json"

// OpenQueue opens (creating) the queue in dir. A torn last line, the
// append a crash interrupted, is cut off: the line is still in the audit
// log, which the Reporter reads again (Reporter's Open).
func OpenQueue(dir string, opts QueueOptions) (*Queue, error) {
	if opts.MaxCount <= 0 {
		opts.MaxCount = DefaultMaxCount
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("report queue: %w", err)
	}
	q := &Queue{dir: dir, opts: opts}
	if err := q.load(true); err != nil {
		return nil, fmt.Errorf("report queue %s: %w", dir, err)
	}
	return q, nil
}

// ReadStats reads the stats of the queue in dir without changing it (for
// ferry agent status, whether the agent runs or not).
func ReadStats(dir string) (Stats, error) {
	q := &Queue{dir: dir}
	if err := q.load(false); err != nil {
		return Stats{}, fmt.Errorf("report queue %s: %w", dir, err)
	}
	return q.stats(), nil
}

// load reads the state and the segments; with repair, it cuts torn lines
// and removes segments that are acknowledged or dropped.
func (q *Queue) load(repair bool) error {
	b, err := os.ReadFile(filepath.Join(q.dir, stateFile))
	if err == nil {
		if err := json.Unmarshal(b, &q.state); err != nil {
			return fmt.Errorf("%s: %w", stateFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	names, err := filepath.Glob(filepath.Join(q.dir, "seg-*.q"))
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		s, err := q.scan(name, repair)
		if err != nil {
			return err
		}
		if s.count == 0 {
			if repair {
				if err := os.Remove(name); err != nil {
					return err
				}
			}
			continue
		}
		q.segs = append(q.segs, s)
	}
	return nil
}

// done is the seq through which lines are acknowledged or dropped.
func (q *Queue) done() uint64 { return max(q.state.Acked.Seq, q.state.DroppedThrough) }

// scan indexes one segment: its pending lines (above done). With repair a
// torn or unreadable tail is cut off.
func (q *Queue) scan(name string, repair bool) (*segment, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	s := &segment{name: name}
	good := 0
	for off := 0; off < len(data); {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		rec, _, err := audit.ParseLine(data[off : off+i])
		if err != nil || rec.Seq <= s.last {
			break
		}
		if rec.Seq > q.done() {
			if s.count == 0 {
				s.first = rec.Seq
			}
			s.count++
			s.bytes += int64(i + 1)
		}
		s.last = rec.Seq
		off += i + 1
		good = off
	}
	if good < len(data) && repair {
		if err := truncateSync(name, int64(good)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func truncateSync(name string, size int64) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// LastSeq is the seq of the newest line the queue has had: queued,
// acknowledged or dropped.
func (q *Queue) LastSeq() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	last := q.done()
	if n := len(q.segs); n > 0 {
		last = max(last, q.segs[n-1].last)
	}
	return last
}

// Append adds one audit line (seq is its seq) and fsyncs it. If the bound
// is crossed it drops the oldest segment and returns how many lines it
// dropped (counted in Stats.Dropped). A seq not above LastSeq is ignored.
func (q *Queue) Append(seq uint64, line []byte) (dropped int, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.segs); seq <= q.done() || n > 0 && seq <= q.segs[n-1].last {
		return 0, nil
	}
	if err := q.room(); err != nil {
		return 0, err
	}
	full := append(slices.Clip(line), '\n')
	if failpoint != nil { // tests: a crash in the middle of the write
		q.cur.Write(full[:len(full)/2])
		failpoint("queue.torn")
		full = full[len(full)/2:]
	}
	if _, err := q.cur.Write(full); err != nil {
		q.closeCur()
		return 0, fmt.Errorf("report queue: append: %w", err)
	}
	if err := q.cur.Sync(); err != nil {
		q.closeCur()
		return 0, fmt.Errorf("report queue: append: fsync: %w", err)
	}
	fail("queue.appended")
	s := q.segs[len(q.segs)-1]
	if s.count == 0 {
		s.first = seq
	}
	s.count++
	s.bytes += int64(len(line) + 1)
	s.last = seq
	return q.bound()
}

// room makes sure there is a current segment with room for one more line.
func (q *Queue) room() error {
	perSeg := max(1, q.opts.MaxCount/8)
	bytesPerSeg := max(1, q.opts.MaxBytes/8)
	if q.cur != nil {
		s := q.segs[len(q.segs)-1]
		if s.count < perSeg && s.bytes < bytesPerSeg {
			return nil
		}
		q.closeCur()
	}
	next := q.done() + 1
	if n := len(q.segs); n > 0 {
		next = q.segs[n-1].last + 1
	}
	name := filepath.Join(q.dir, "seg-"+fmt.Sprintf("%020d", next)+".q")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("report queue: %w", err)
	}
	if err := atomicfile.SyncDir(q.dir); err != nil {
		f.Close()
		return fmt.Errorf("report queue: %w", err)
	}
	q.cur = f
	q.segs = append(q.segs, &segment{name: name})
	return nil
}

func (q *Queue) closeCur() {
	if q.cur != nil {
		q.cur.Close()
		q.cur = nil
	}
}

// bound drops the oldest segments while the queue is over its bound.
func (q *Queue) bound() (int, error) {
	dropped := 0
	for len(q.segs) > 1 && q.over() {
		s := q.segs[0]
		st := q.state
		st.Dropped += s.count
		st.DroppedThrough = max(st.DroppedThrough, s.last)
		if err := q.saveState(st); err != nil {
			return dropped, err
		}
		fail("drop.saved")
		q.segs = q.segs[1:]
		dropped += s.count
		if err := os.Remove(s.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return dropped, fmt.Errorf("report queue: %w", err)
		}
	}
	return dropped, nil
}

func (q *Queue) over() bool {
	st := q.stats()
	return st.Depth > q.opts.MaxCount || st.Bytes > q.opts.MaxBytes
}

func (q *Queue) saveState(st queueState) error {
	b, _ := json.Marshal(st)
	if err := atomicfile.WriteFile(filepath.Join(q.dir, stateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("report queue: %w", err)
	}
	q.state = st
	return nil
}

// Peek returns the oldest pending lines, in order: at most n lines and
// about maxBytes bytes (at least one line).
func (q *Queue) Peek(n int, maxBytes int) ([]Item, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Item
	size := 0
	for _, s := range q.segs {
		data, err := os.ReadFile(s.name)
		if err != nil {
			return nil, fmt.Errorf("report queue: %w", err)
		}
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			if len(line) == 0 || line[len(line)-1] != '\n' {
				break
			}
			line = line[:len(line)-1]
			rec, hash, err := audit.ParseLine(line)
			if err != nil {
				break
			}
			if rec.Seq <= q.done() {
				continue
			}
			if len(out) == n || len(out) > 0 && size+len(line) > maxBytes {
				return out, nil
			}
			out = append(out, Item{Seq: rec.Seq, Prev: rec.Prev, Hash: hash, Line: line})
			size += len(line)
		}
	}
	return out, nil
}

// Ack records that the server has every line through st.Seq, at time at,
// and removes the segments it empties.
func (q *Queue) Ack(st audit.State, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st.Seq < q.state.Acked.Seq {
		return nil
	}
	ns := q.state
	ns.Acked, ns.LastDelivery = st, at.UTC()
	ns.LastError, ns.LastErrorAt = "", time.Time{}
	if err := q.saveState(ns); err != nil {
		return err
	}
	fail("ack.saved")
	for len(q.segs) > 0 && q.segs[0].last <= st.Seq {
		s := q.segs[0]
		if len(q.segs) == 1 {
			q.closeCur()
		}
		q.segs = q.segs[1:]
		if err := os.Remove(s.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("report queue: %w", err)
		}
	}
	if len(q.segs) > 0 {
		// The first segment is partly acknowledged: count what is left.
		s, err := q.scan(q.segs[0].name, false)
		if err != nil {
			return err
		}
		q.segs[0].first, q.segs[0].count, q.segs[0].bytes = s.first, s.count, s.bytes
	}
	return nil
}

// maxErrorLen bounds the recorded error: the server's message is its own.
const maxErrorLen = 300

// Failed records that a send failed at time at with err (shown by ferry
// agent status until the next delivery), as one printable line.
func (q *Queue) Failed(err error, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	ns := q.state
	ns.LastError, ns.LastErrorAt = oneLine(err.Error()), at.UTC()
	return q.saveState(ns)
}

// oneLine makes s one line of printable characters, at most maxErrorLen
// runes: a server's message must not move a terminal's cursor.
func oneLine(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxErrorLen {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Stats returns the queue's depth, dropped count and last delivery.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats()
}

func (q *Queue) stats() Stats {
	st := Stats{Dropped: q.state.Dropped, Acked: q.state.Acked, LastDelivery: q.state.LastDelivery,
		LastError: q.state.LastError, LastErrorAt: q.state.LastErrorAt}
	for _, s := range q.segs {
		st.Depth += s.count
		st.Bytes += s.bytes
	}
	return st
}

// Close closes the segment being appended to.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closeCur()
	return nil
}

// failpoint, set by tests only, is called at named steps (a test process
// kills itself there).
var failpoint func(step string)

func fail(step string) {
	if failpoint != nil {
		failpoint(step)
	}
}
