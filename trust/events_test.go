package trust_test

import (
	"testing"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/trust"
)

// A rejection is one typed event whose evidence says which role, what
// kind of failure and which versions, without parsing the error text.
func TestRejectionEvent_R9(t *testing.T) {
	e := newEnv(t)
	c := e.refreshed()
	old := e.repo.Bytes("timestamp.json")
	e.repo.PublishTimestamp()
	if err := e.refresh(c); err != nil {
		t.Fatal(err)
	}
	e.repo.Serve("timestamp.json", old)
	wantKind(t, e.refresh(c), trust.ErrRollback)
	var got []event.Event
	for _, ev := range e.rec.Events() {
		if ev.Kind == event.MetadataRejected {
			got = append(got, ev)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d rejection events, want 1: %v", len(got), got)
	}
	ev := got[0]
	want := map[string]string{"role": "timestamp", "reason": "rollback", "versions": "trusted=2 new=1"}
	for k, v := range want {
		if ev.Evidence[k] != v {
			t.Errorf("evidence %s = %q, want %q (all: %v)", k, ev.Evidence[k], v, ev.Evidence)
		}
	}
	if ev.Cause == "" || ev.App != "" || !ev.Time.Equal(e.now) {
		t.Errorf("event %+v: want a cause, no application, the configured clock's time", ev)
	}
}
