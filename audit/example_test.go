package audit_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
)

var update = flag.Bool("update", false, "rewrite testdata/example.log")

// exampleEvents are the events of testdata/example.log, the log that
// docs/audit.md shows and tampers with: an update of hello that fails its
// health check and is rolled back, then a refused timestamp.
func exampleEvents() []event.Event {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ev := func(min int, k event.Kind, app, version, cause string, kv ...string) event.Event {
		e := event.Event{Time: at.Add(time.Duration(min) * time.Minute), Kind: k, App: app, Version: version, Cause: cause}
		if len(kv) > 0 {
			e.Evidence = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				e.Evidence[kv[i]] = kv[i+1]
			}
		}
		return e
	}
	return []event.Event{
		ev(0, event.CheckStarted, "hello", "1.4.1", ""),
		ev(0, event.CheckOffered, "hello", "1.4.2", "in the rollout's 5%", "bucket", "312", "basis_points", "500"),
		ev(1, event.DownloadDone, "hello", "1.4.2", "", "target", "hello/1.4.2/linux-amd64/hello", "sha256", "9f3c5b1e0d7a4c2b8e6f1a3d5c7b9e0f2a4c6e8b0d1f3a5c7e9b1d3f5a7c9e1b"),
		ev(1, event.InstallStarted, "hello", "1.4.2", ""),
		ev(2, event.HealthFailed, "hello", "1.4.2", "health check ./bin/hello --version: exit status 1"),
		ev(2, event.RolledBack, "hello", "1.4.2", "health check failed; 1.4.1 runs again", "from", "1.4.2", "to", "1.4.1"),
		ev(60, event.CheckStarted, "web", "2.0.0", ""),
		ev(60, event.MetadataRejected, "", "", "timestamp.json: signature threshold not met", "role", "timestamp"),
		ev(60, event.CheckFailed, "web", "2.0.0", "refresh: timestamp.json: signature threshold not met"),
	}
}

// testdata/example.log is what Log writes for exampleEvents (go test
// -update rewrites it), and it verifies.
func TestExampleLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exampleEvents() {
		l.Observe(e)
	}
	if err := l.Close(); err != nil || l.Err() != nil {
		t.Fatal(err, l.Err())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "example.log")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Log writes\n%s\ntestdata/example.log holds\n%s(go test ./audit -run TestExampleLog -update rewrites it)", got, want)
	}
	if st, err := audit.Verify(bytes.NewReader(want), audit.Start); err != nil || st.Seq != 9 {
		t.Fatalf("example.log: %v, %v", st, err)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	// The agent passes every event to the log, next to its other observers:
	// obs := event.Tee(event.Slog(logger), log)
	log, err := audit.Open(path, audit.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	log.Observe(event.Event{Kind: event.InstallDone, App: "hello", Version: "1.4.2"})
	if err := log.Err(); err != nil {
		fmt.Println(err) // the caller decides: warn, stop, alert
	}
	reported := log.State() // what the reporter sends the server
	log.Close()

	f, _ := os.Open(path)
	defer f.Close()
	st, err := audit.VerifyKnown(f, audit.Start, reported)
	fmt.Println(st.Seq, err)
	// Output: 1 <nil>
}
