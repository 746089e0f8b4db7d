package report

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
)

// lines writes n events to a real audit log and returns its lines.
func lines(t *testing.T, n int) [][]byte {
	t.Helper()
	var out [][]byte
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{
		OnAppend: func(line []byte, _ audit.State) { out = append(out, append([]byte(nil), line...)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range n {
		l.Observe(event.Event{Time: time.Now(), Kind: event.CheckStarted, App: "hello", Version: fmt.Sprintf("1.0.%d", i)})
	}
	return out
}

func TestQueueAppendPeekAck(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, QueueOptions{MaxCount: 80})
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(t, 25)
	for i, l := range ls {
		if n, err := q.Append(uint64(i+1), l); err != nil || n != 0 {
			t.Fatalf("append %d: %d, %v", i+1, n, err)
		}
	}
	if _, err := q.Append(3, ls[2]); err != nil || q.Stats().Depth != 25 {
		t.Fatalf("an old seq again is ignored: depth %d, %v", q.Stats().Depth, err)
	}
	items, err := q.Peek(10, 1<<20)
	if err != nil || len(items) != 10 || items[0].Seq != 1 || items[9].Seq != 10 || string(items[3].Line) != string(ls[3]) {
		t.Fatalf("peek: %d items, %v", len(items), err)
	}
	if err := q.Ack(items[9].State(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Depth != 15 || st.Acked.Seq != 10 || st.LastDelivery.IsZero() {
		t.Fatalf("after ack: %+v", st)
	}
	q.Close()
	// Reopened: the same pending lines, the acknowledged ones gone.
	q, err = OpenQueue(dir, QueueOptions{MaxCount: 80})
	if err != nil {
		t.Fatal(err)
	}
	items, _ = q.Peek(100, 1<<20)
	if len(items) != 15 || items[0].Seq != 11 || q.LastSeq() != 25 {
		t.Fatalf("reopened: %d items from %d, last %d", len(items), items[0].Seq, q.LastSeq())
	}
	if err := q.Ack(items[14].State(), time.Now()); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) != 0 || q.Stats().Depth != 0 {
		t.Fatalf("everything acknowledged, %d segments left, depth %d", len(segs), q.Stats().Depth)
	}
}

// TestQueueBound_R66: past its bound the queue drops the oldest lines and
// counts them; never more than the bound is kept, never a line silently.
func TestQueueBound_R66(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, QueueOptions{MaxCount: 16})
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(t, 40)
	total := 0
	for i, l := range ls {
		n, err := q.Append(uint64(i+1), l)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if d := q.Stats().Depth; d > 16 {
			t.Fatalf("depth %d over the bound 16", d)
		}
	}
	st := q.Stats()
	if total == 0 || st.Dropped != total || st.Depth+st.Dropped != 40 {
		t.Fatalf("dropped %d (returned %d), depth %d: lines lost without a count", st.Dropped, total, st.Depth)
	}
	items, _ := q.Peek(100, 1<<20)
	if items[0].Seq != uint64(total+1) || items[len(items)-1].Seq != 40 {
		t.Fatalf("kept %d..%d, want the newest", items[0].Seq, items[len(items)-1].Seq)
	}
	q.Close()
	if st2, err := ReadStats(dir); err != nil || st2.Dropped != st.Dropped || st2.Depth != st.Depth {
		t.Fatalf("ReadStats %+v %v, want %+v", st2, err, st)
	}
	// A bytes bound too.
	q, _ = OpenQueue(t.TempDir(), QueueOptions{MaxBytes: int64(4 * len(ls[0]))})
	for i, l := range ls {
		q.Append(uint64(i+1), l)
	}
	if st := q.Stats(); st.Bytes > int64(4*len(ls[0])+len(ls[0])) || st.Dropped == 0 {
		t.Fatalf("bytes bound: %+v", st)
	}
}

// TestQueueTornLine: a line cut by a crash is cut off at Open; the lines
// before it stay.
func TestQueueTornLine(t *testing.T) {
	dir := t.TempDir()
	q, _ := OpenQueue(dir, QueueOptions{})
	ls := lines(t, 3)
	q.Append(1, ls[0])
	q.Append(2, ls[1])
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	f, _ := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	f.Write(ls[2][:20])
	f.Close()
	q, err := OpenQueue(dir, QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Stats().Depth != 2 || q.LastSeq() != 2 {
		t.Fatalf("after a torn line: depth %d, last %d", q.Stats().Depth, q.LastSeq())
	}
	if _, err := q.Append(3, ls[2]); err != nil {
		t.Fatal(err)
	}
	items, _ := q.Peek(10, 1<<20)
	if len(items) != 3 || items[2].Hash == "" {
		t.Fatalf("%d items after repair", len(items))
	}
}
