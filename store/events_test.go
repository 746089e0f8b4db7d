package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
)

func testEvent(seq uint64) event.Event {
	return event.Event{Time: t0.Add(time.Duration(seq) * time.Second), Kind: event.CheckStarted, App: "web",
		Evidence: map[string]string{"n": strconv.FormatUint(seq, 10)}}
}

func count(t *testing.T, s Store, q EventQuery) int {
	t.Helper()
	q.Limit = MaxLimit
	es, err := s.QueryEvents(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func appendOK(t *testing.T, s Store, id string, batch []Event, want int) {
	t.Helper()
	n, err := s.AppendEvents(context.Background(), id, batch)
	if err != nil || n != want {
		t.Fatalf("AppendEvents(%s, %d events) = %d, %v; want %d new", id, len(batch), n, err, want)
	}
}

func testEventsIdempotent(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a")
	appendOK(t, s, "a", chain("a", 1, 10), 10)
	appendOK(t, s, "a", chain("a", 1, 10), 0)    // the same batch again counts once
	appendOK(t, s, "a", chain("a", 6, 15), 5)    // overlapping: only 11..15 are new
	appendOK(t, s, "a", chain("a", 3, 3), 0)     // one old event
	appendOK(t, s, "a", nil, 0)                  // an empty batch
	appendOK(t, s, "a", chain("a", 300, 300), 1) // a gap is the caller's business
	if n := count(t, s, EventQuery{InstallID: "a"}); n != 16 {
		t.Fatalf("%d events stored, want 16", n)
	}
	h, err := s.ChainHead(ctx, "a")
	if err != nil || h != (Head{300, lineHash("a", 300)}) {
		t.Fatalf("ChainHead = %v, %v", h, err)
	}
	es, _ := s.QueryEvents(ctx, EventQuery{InstallID: "a", Limit: 1})
	want := chain("a", 1, 1)[0]
	if len(es) != 1 || es[0].InstallID != "a" || es[0].Seq != 1 || es[0].Prev != want.Prev || es[0].Hash != want.Hash ||
		!es[0].Time.Equal(want.Time) || es[0].Kind != want.Kind || es[0].App != "web" || es[0].Evidence["n"] != "1" || es[0].Received.IsZero() {
		t.Fatalf("stored event = %+v, want %+v", es, want)
	}
	if _, err := s.AppendEvents(ctx, "nobody", chain("nobody", 1, 2)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("events of an installation that is not enrolled: %v, want ErrNotFound", err)
	}
	if _, err := s.AppendEvents(ctx, "nobody", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty batch of an installation that is not enrolled: %v, want ErrNotFound", err)
	}
	if _, err := s.ChainHead(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ChainHead of an installation that is not enrolled: %v, want ErrNotFound", err)
	}
	bad := chain("a", 0, 0)
	if _, err := s.AppendEvents(ctx, "a", bad); err == nil {
		t.Fatal("an event with seq 0 was accepted")
	}
	enroll(t, s, "fresh")
	if h, err := s.ChainHead(ctx, "fresh"); err != nil || h != (Head{}) {
		t.Fatalf("ChainHead of an installation with no events = %v, %v; want {0, \"\"}", h, err)
	}
}

// A sequence number stored with another hash is a conflict, and the whole
// batch that carried it is refused.
func testEventsConflict(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a")
	appendOK(t, s, "a", chain("a", 1, 5), 5)
	batch := chain("a", 4, 8)
	batch[0].Hash = hashOf("a rewritten line")
	_, err := s.AppendEvents(ctx, "a", batch)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "seq 4") {
		t.Fatalf("batch with seq 4 under another hash: %v, want ErrConflict naming seq 4", err)
	}
	if n := count(t, s, EventQuery{InstallID: "a"}); n != 5 {
		t.Fatalf("%d events stored after the refused batch, want 5 (6..8 not stored)", n)
	}
	// Two events with one seq and two hashes in one batch.
	dup := append(chain("a", 9, 9), chain("a", 9, 9)...)
	dup[1].Hash = hashOf("other")
	if _, err := s.AppendEvents(ctx, "a", dup); !errors.Is(err, ErrConflict) {
		t.Fatalf("one batch with seq 9 twice under two hashes: %v, want ErrConflict", err)
	}
	if n := count(t, s, EventQuery{InstallID: "a"}); n != 5 {
		t.Fatalf("%d events stored, want 5", n)
	}
}

// Many installations send interleaved batches at once, each batch twice
// (a retry after a lost answer): every event is stored once.
func testEventsManyInstallationsConcurrently(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.fresh(t)
	s, s2 := openStore(t, loc), openStore(t, loc)
	const installs, batches, size = 16, 8, 50
	ids := make([]string, installs)
	for i := range ids {
		ids[i] = fmt.Sprintf("inst-%02d", i)
	}
	enroll(t, s, ids...)
	var added sync.Map
	var wg sync.WaitGroup
	for i, id := range ids {
		for copy := range 2 {
			wg.Go(func() {
				st := []Store{s, s2}[(i+copy)%2]
				total := 0
				for k := range batches {
					from := uint64(k*size + 1)
					n, err := st.AppendEvents(ctx, id, chain(id, from, from+size-1))
					if err != nil {
						t.Errorf("AppendEvents(%s, batch %d): %v", id, k, err)
						return
					}
					total += n
				}
				added.Store(fmt.Sprint(id, copy), total)
			})
		}
	}
	wg.Wait()
	for _, id := range ids {
		a, _ := added.Load(fmt.Sprint(id, 0))
		c, _ := added.Load(fmt.Sprint(id, 1))
		if a == nil || c == nil || a.(int)+c.(int) != batches*size {
			t.Errorf("%s: the two senders added %v and %v, want %d in all", id, a, c, batches*size)
		}
		h, err := s.ChainHead(ctx, id)
		if err != nil || h.Seq != batches*size {
			t.Errorf("ChainHead(%s) = %v, %v", id, h, err)
		}
	}
	if n := count(t, s, EventQuery{}); n != installs*batches*size {
		t.Fatalf("%d events stored, want %d", n, installs*batches*size)
	}
}

func testEventsOrderAndQueries(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a", "b")
	// a's events arrive newest batch first; b's interleave with a's in time.
	mk := func(id string, seq uint64, at time.Duration, kind event.Kind, app, version string) Event {
		return Event{Seq: seq, Prev: lineHash(id, seq-1), Hash: lineHash(id, seq),
			Event: event.Event{Time: t0.Add(at), Kind: kind, App: app, Version: version, Cause: "cause " + id}}
	}
	appendOK(t, s, "a", []Event{mk("a", 3, 30*time.Second, event.HealthFailed, "web", "1.1.0"), mk("a", 4, 40*time.Second, event.RolledBack, "web", "1.1.0")}, 2)
	appendOK(t, s, "a", []Event{mk("a", 1, 10*time.Second, event.CheckStarted, "web", ""), mk("a", 2, 20*time.Second, event.InstallStarted, "web", "1.1.0")}, 2)
	appendOK(t, s, "b", []Event{mk("b", 1, 10*time.Second, event.CheckStarted, "api", ""), mk("b", 2, 25*time.Second, event.MetadataRejected, "", "")}, 2)
	key := func(es []Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%s%d", e.InstallID, e.Seq))
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    EventQuery
		want []string
	}{
		{"all, by time then installation then seq", EventQuery{}, []string{"a1", "b1", "a2", "b2", "a3", "a4"}},
		{"one installation", EventQuery{InstallID: "a"}, []string{"a1", "a2", "a3", "a4"}},
		{"one application", EventQuery{App: "api"}, []string{"b1"}},
		{"one release", EventQuery{App: "web", Version: "1.1.0"}, []string{"a2", "a3", "a4"}},
		{"kinds", EventQuery{Kinds: []event.Kind{event.MetadataRejected, event.HealthFailed}}, []string{"b2", "a3"}},
		{"since", EventQuery{Since: t0.Add(25 * time.Second)}, []string{"b2", "a3", "a4"}},
		{"until", EventQuery{Until: t0.Add(20 * time.Second)}, []string{"a1", "b1"}},
		{"window and kind", EventQuery{Since: t0.Add(15 * time.Second), Until: t0.Add(35 * time.Second), Kinds: []event.Kind{event.HealthFailed, event.InstallStarted}}, []string{"a2", "a3"}},
		{"limit", EventQuery{Limit: 3}, []string{"a1", "b1", "a2"}},
		{"nothing", EventQuery{App: "none"}, nil},
	} {
		es, err := s.QueryEvents(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := key(es); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// testRecentEvents: RecentEvents selects and orders by the server's
// receive time, newest first, and caps each installation: an
// installation whose clock says its events are newest, or that sent many,
// cannot push another's newer ones out (R65, review 9 F5).
func testRecentEvents(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a", "b", "c")
	mk := func(id string, seq uint64, occurred, received time.Duration, kind event.Kind) Event {
		return Event{Seq: seq, Prev: lineHash(id, seq-1), Hash: lineHash(id, seq), Received: t0.Add(received),
			Event: event.Event{Time: t0.Add(occurred), Kind: kind, App: "web", Version: "1.0.0"}}
	}
	// a: five events received at 10..50 s, dated an hour ahead by its clock.
	var as []Event
	for i := range uint64(5) {
		as = append(as, mk("a", i+1, time.Hour+time.Duration(i)*time.Second, time.Duration(i+1)*10*time.Second, event.DownloadRejected))
	}
	appendOK(t, s, "a", as, 5)
	// b: received last (60 s, 70 s), dated before everything else by its clock.
	appendOK(t, s, "b", []Event{mk("b", 1, -time.Hour, 60*time.Second, event.StagingRefused), mk("b", 2, -time.Hour, 70*time.Second, event.CheckStarted)}, 2)
	// c: received at 5 s.
	appendOK(t, s, "c", []Event{mk("c", 1, 0, 5*time.Second, event.MetadataRejected)}, 1)
	key := func(es []Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%s%d", e.InstallID, e.Seq))
		}
		return out
	}
	sec := []event.Kind{event.DownloadRejected, event.StagingRefused, event.MetadataRejected}
	for _, c := range []struct {
		name string
		q    EventQuery
		per  int
		want []string
	}{
		{"all, newest received first", EventQuery{}, 0, []string{"b2", "b1", "a5", "a4", "a3", "a2", "a1", "c1"}},
		{"kinds", EventQuery{Kinds: sec}, 0, []string{"b1", "a5", "a4", "a3", "a2", "a1", "c1"}},
		{"two of each installation", EventQuery{Kinds: sec}, 2, []string{"b1", "a5", "a4", "c1"}},
		{"limit after the cap", EventQuery{Kinds: sec, Limit: 3}, 2, []string{"b1", "a5", "a4"}},
		{"since on received, not on the installation's clock", EventQuery{Since: t0.Add(50 * time.Second)}, 0, []string{"b2", "b1", "a5"}},
		{"until on received", EventQuery{Until: t0.Add(20 * time.Second)}, 0, []string{"a1", "c1"}},
		{"one installation", EventQuery{InstallID: "a", Kinds: sec}, 3, []string{"a5", "a4", "a3"}},
		{"nothing", EventQuery{App: "none"}, 1, nil},
	} {
		es, err := s.RecentEvents(ctx, c.q, c.per)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := key(es); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	es, err := s.RecentEvents(ctx, EventQuery{InstallID: "c"}, 1)
	if err != nil || len(es) != 1 || !es[0].Received.Equal(t0.Add(5*time.Second)) || !es[0].Time.Equal(t0) || es[0].Kind != event.MetadataRejected {
		t.Fatalf("RecentEvents(c) = %+v, %v", es, err)
	}
}

// testReport: a batch and its check-in are stored both or neither.
func testReport(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a")
	web := func(v string) []App { return []App{{App: "web", Version: v, Channel: "stable"}} }
	check := func(what string, seen time.Duration, version string, head uint64) {
		t.Helper()
		in, err := s.Installation(ctx, "a")
		if err != nil || !in.LastSeen.Equal(t0.Add(seen)) || len(in.Apps) != 1 || in.Apps[0].Version != version {
			t.Fatalf("%s: Installation(a) = %+v, %v; want last seen %v, web %s", what, in, err, t0.Add(seen), version)
		}
		if h, err := s.ChainHead(ctx, "a"); err != nil || h.Seq != head {
			t.Fatalf("%s: ChainHead(a) = %v, %v; want seq %d", what, h, err, head)
		}
	}
	if n, err := s.Report(ctx, "a", chain("a", 1, 3), t0.Add(time.Hour), web("1.0.0")); err != nil || n != 3 {
		t.Fatalf("Report of 3 new events = %d, %v", n, err)
	}
	check("after the first batch", time.Hour, "1.0.0", 3)
	if n, err := s.Report(ctx, "a", chain("a", 1, 3), t0.Add(2*time.Hour), web("1.0.0")); err != nil || n != 0 {
		t.Fatalf("Report of a resent batch = %d, %v; want 0 new", n, err)
	}
	check("after the resent batch", 2*time.Hour, "1.0.0", 3)
	bad := chain("a", 3, 4)
	bad[0].Hash = lineHash("x", 3)
	if _, err := s.Report(ctx, "a", bad, t0.Add(3*time.Hour), web("2.0.0")); !errors.Is(err, ErrConflict) {
		t.Fatalf("Report of a conflicting batch: %v, want ErrConflict", err)
	}
	check("after the conflicting batch (neither stored)", 2*time.Hour, "1.0.0", 3)
	if n, err := s.Report(ctx, "a", nil, t0.Add(4*time.Hour), web("2.0.0")); err != nil || n != 0 {
		t.Fatalf("Report of an empty batch = %d, %v", n, err)
	}
	check("after a check-in alone", 4*time.Hour, "2.0.0", 3)
	for _, batch := range [][]Event{nil, chain("nobody", 1, 1)} {
		if _, err := s.Report(ctx, "nobody", batch, t0, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Report of an unknown installation (%d events): %v, want ErrNotFound", len(batch), err)
		}
	}
	if _, err := s.ChainHead(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ChainHead of an unknown installation: %v, want ErrNotFound", err)
	}
}
