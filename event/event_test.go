package event

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestEmitterStampsAndTees(t *testing.T) {
	var a, b Recorder
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	m := Emitter{Observer: Tee(&a, nil, &b), Now: func() time.Time { return at }, App: "hello"}
	m.Emit(DownloadRejected, "1.4.2", "sha256 mismatch", "target", "hello/1.4.2/linux-amd64/hello", "odd")
	m.For("other").Emit(CheckStarted, "", "")
	for _, r := range []*Recorder{&a, &b} {
		ev := r.Events()
		if len(ev) != 2 {
			t.Fatalf("recorded %d events, want 2", len(ev))
		}
		e := ev[0]
		if e.Kind != DownloadRejected || e.App != "hello" || e.Version != "1.4.2" || !e.Time.Equal(at) ||
			e.Evidence["target"] != "hello/1.4.2/linux-amd64/hello" || len(e.Evidence) != 1 {
			t.Errorf("event = %+v", e)
		}
		if ev[1].App != "other" || ev[1].Evidence != nil {
			t.Errorf("second event = %+v", ev[1])
		}
	}
	var zero Emitter
	zero.Emit(CheckStarted, "", "") // drops, does not panic
}

func TestSlogObserver(t *testing.T) {
	var buf bytes.Buffer
	o := Slog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	o.Observe(Event{Kind: CheckUpToDate, App: "hello"})
	o.Observe(Event{Kind: MetadataRejected, Cause: "bad signature", Evidence: map[string]string{"role": "snapshot"}})
	out := buf.String()
	if strings.Contains(out, "check.uptodate") {
		t.Errorf("info event logged at warn level: %s", out)
	}
	for _, want := range []string{"event=metadata.rejected", `cause="bad signature"`, "role=snapshot", "level=WARN"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if !MetadataRejected.Security() || CheckOffered.Security() {
		t.Error("Security() classifies kinds wrongly")
	}
	Or(nil).Observe(Event{}) // Discard
}
