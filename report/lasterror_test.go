package report

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// TestRefusedDeliveryRecorded_R69: when the server refuses the queued
// events (here 403, the installation revoked), the queue records the
// error, so ferry agent status shows why nothing is delivered; the next
// delivery clears it.
func TestRefusedDeliveryRecorded_R69(t *testing.T) {
	s := newSite(t)
	dir, id := s.enroll(t)
	r, err := Open(Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if err := s.st.RevokeInstallation(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	r.Observe(event.Event{Time: time.Now(), Kind: event.CheckStarted, App: "hello"})
	if err := r.Flush(ctx); err == nil {
		t.Fatal("Flush of a revoked installation: no error")
	}
	st, err := ReadStats(filepath.Join(dir, QueueDir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != 1 || !strings.Contains(st.LastError, "403") || st.LastErrorAt.IsZero() {
		t.Fatalf("stats after a refused send = %+v; want depth 1 and the 403 as last error", st)
	}
}

// TestLastErrorOneLineCleared: the recorded error is one printable line
// (the server's message is the server's), and an acknowledgement clears it.
func TestLastErrorOneLineCleared(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Failed(errString("server answered 409: rewritten\n\x1b[2Jfake "+strings.Repeat("x", 1000)), time.Now()); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if strings.ContainsAny(st.LastError, "\n\x1b") || len([]rune(st.LastError)) > maxErrorLen+1 || !strings.HasPrefix(st.LastError, "server answered 409") {
		t.Fatalf("LastError = %q; want one printable bounded line", st.LastError)
	}
	if err := q.Ack(st.Acked, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.LastError != "" || !st.LastErrorAt.IsZero() {
		t.Fatalf("after a delivery: %+v; want no last error", st)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
