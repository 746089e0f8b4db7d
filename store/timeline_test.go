package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// InstallCounts: installs per version per interval, each installation once
// per version and interval; other kinds, applications and times outside
// the window are not counted; bad queries are refused.
func testInstallCounts(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a", "b", "c")
	seqs := map[string]uint64{}
	report := func(id string, at time.Duration, kind event.Kind, app, version string) {
		t.Helper()
		seqs[id]++
		seq := seqs[id]
		e := Event{Seq: seq, Prev: lineHash(id, seq-1), Hash: lineHash(id, seq),
			Event: event.Event{Time: t0.Add(at), Kind: kind, App: app, Version: version}}
		if _, err := s.AppendEvents(ctx, id, []Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	report("a", 5*time.Minute, event.InstallDone, "web", "1.0.0")
	report("a", 6*time.Minute, event.InstallDone, "web", "1.0.0") // a again in the same interval: once
	report("b", 9*time.Minute, event.InstallDone, "web", "1.0.0")
	report("c", 10*time.Minute, event.InstallDone, "web", "1.0.0") // the next interval starts at 10 min
	report("a", 25*time.Minute, event.InstallDone, "web", "1.1.0")
	report("b", 26*time.Minute, event.InstallStarted, "web", "1.1.0") // not an install
	report("b", 27*time.Minute, event.InstallDone, "api", "1.1.0")    // another application
	report("c", -time.Minute, event.InstallDone, "web", "0.9.0")      // before Since
	report("c", 30*time.Minute, event.InstallDone, "web", "1.1.0")    // at Until: outside
	got, err := s.InstallCounts(ctx, InstallCountQuery{App: "web", Since: t0, Until: t0.Add(30 * time.Minute), Step: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	want := []InstallCount{
		{Version: "1.0.0", Start: t0, Installs: 2},
		{Version: "1.0.0", Start: t0.Add(10 * time.Minute), Installs: 1},
		{Version: "1.1.0", Start: t0.Add(20 * time.Minute), Installs: 1},
	}
	for i := range got {
		got[i].Start = got[i].Start.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("InstallCounts = %v\nwant %v", got, want)
	}
	for _, q := range []InstallCountQuery{
		{App: "", Since: t0, Until: t0.Add(time.Hour), Step: time.Minute},
		{App: "web", Since: t0, Until: t0.Add(time.Hour), Step: 0},
		{App: "web", Since: t0, Until: t0, Step: time.Minute},
		{App: "web", Since: t0, Until: t0.Add(MaxInstallSteps * time.Second * 2), Step: time.Second},
	} {
		if _, err := s.InstallCounts(ctx, q); err == nil {
			t.Errorf("InstallCounts(%s) accepted", fmt.Sprint(q))
		}
	}
}
