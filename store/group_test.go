package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit: on SQLite, writes that queue while another holds the
// writer's turn are committed together, and each keeps its own outcome:
// one that fails (a conflicting event, an unknown installation) is rolled
// back alone, with nothing of it stored, and gets its own error; one whose
// context ended while it waited is not run; the others are all stored.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "ferry.db"))
	s := st.(*sqlStore)
	enroll(t, s, "a", "b", "c")
	appendOK(t, s, "b", chain("b", 1, 1), 1)

	s.writer <- struct{}{} // hold the turn, so that the writes below queue
	type outcome struct {
		name string
		err  error
	}
	results := make(chan outcome, 16)
	var wg sync.WaitGroup
	start := func(name string, ctx context.Context, fn func(ctx context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- outcome{name, fn(ctx)}
		}()
	}
	for seq := uint64(1); seq <= 10; seq++ {
		start("a", ctx, func(ctx context.Context) error {
			_, err := s.AppendEvents(ctx, "a", chain("a", seq, seq))
			return err
		})
	}
	// seq 1 of b stored with another hash, and a new seq 2 in the same batch.
	bad := chain("b", 1, 2)
	bad[0].Hash = lineHash("x", 1)
	start("conflict", ctx, func(ctx context.Context) error { _, err := s.AppendEvents(ctx, "b", bad); return err })
	start("unknown", ctx, func(ctx context.Context) error { return s.Seen(ctx, "nobody", t0, nil) })
	gone, cancel := context.WithCancel(ctx)
	start("cancelled", gone, func(ctx context.Context) error { _, err := s.AppendEvents(ctx, "c", chain("c", 1, 1)); return err })
	waitQueue(t, s, 13)
	cancel()
	waitQueue(t, s, 12)
	<-s.writer // let them go: one takes the turn and commits the rest with its own
	wg.Wait()
	close(results)

	got := map[string][]error{}
	for r := range results {
		got[r.name] = append(got[r.name], r.err)
	}
	for _, err := range got["a"] {
		if err != nil {
			t.Errorf("a write of the group: %v", err)
		}
	}
	if len(got["a"]) != 10 {
		t.Fatalf("%d results for a, want 10", len(got["a"]))
	}
	if err := got["conflict"][0]; !errors.Is(err, ErrConflict) {
		t.Errorf("conflicting batch: %v, want ErrConflict", err)
	}
	if err := got["unknown"][0]; !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown installation: %v, want ErrNotFound", err)
	}
	if err := got["cancelled"][0]; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled write: %v, want context.Canceled", err)
	}
	if h, err := s.ChainHead(ctx, "a"); err != nil || h.Seq != 10 {
		t.Errorf("a's head after the group: %v, %v; want seq 10", h, err)
	}
	if n := count(t, s, EventQuery{InstallID: "a"}); n != 10 {
		t.Errorf("%d events of a stored, want 10", n)
	}
	if h, err := s.ChainHead(ctx, "b"); err != nil || h != (Head{1, lineHash("b", 1)}) {
		t.Errorf("b after its conflicting batch: %v, %v; want only its first event", h, err)
	}
	if n := count(t, s, EventQuery{InstallID: "c"}); n != 0 {
		t.Errorf("the cancelled write stored %d events", n)
	}
	s.mu.Lock()
	left := len(s.queue)
	s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d writes left in the queue", left)
	}
}

func waitQueue(t *testing.T, s *sqlStore, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		k := len(s.queue)
		s.mu.Unlock()
		if k == n {
			return
		}
	}
	t.Fatalf("the queue never held %d writes", n)
}

// TestGroupCommitPanic: a write that panics panics in its own goroutine,
// alone or in a group; the group's other writes are stored, and the
// writer's turn is free again after.
func TestGroupCommitPanic(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "ferry.db"))
	s := st.(*sqlStore)
	enroll(t, s, "a", "b")
	boom := func(ctx context.Context) (v any) {
		defer func() { v = recover() }()
		s.write(ctx, func(tx *txn) error {
			if _, err := tx.exec(ctx, "UPDATE installations SET last_seen = 1 WHERE id = 'b'"); err != nil {
				return err
			}
			panic("boom")
		})
		return nil
	}
	if v := boom(ctx); v != "boom" {
		t.Fatalf("a lone write's panic: recovered %v, want boom", v)
	}
	s.writer <- struct{}{}
	var wg sync.WaitGroup
	var panicked any
	var appendErr error
	wg.Go(func() { panicked = boom(ctx) })
	wg.Go(func() { _, appendErr = s.AppendEvents(ctx, "a", chain("a", 1, 2)) })
	waitQueue(t, s, 2)
	<-s.writer
	wg.Wait()
	if panicked != "boom" || appendErr != nil {
		t.Fatalf("in a group: panic %v (want boom), the other write: %v", panicked, appendErr)
	}
	if n := count(t, s, EventQuery{InstallID: "a"}); n != 2 {
		t.Errorf("%d events of the group's other write stored, want 2", n)
	}
	if b, err := s.Installation(ctx, "b"); err != nil || b.LastSeen.UnixNano() == 1 {
		t.Errorf("the panicking write's update was kept: %+v, %v", b, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Seen(ctx, "a", t0.Add(time.Hour), nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write after the panics never got the writer's turn")
	}
}
