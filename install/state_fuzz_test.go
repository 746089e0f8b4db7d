package install

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeState_R52 feeds arbitrary bytes to the state decoder: it never
// panics, and whatever it accepts encodes to a file that decodes to the
// same state again (byte-identical re-encoding), for the expected app only.
func FuzzDecodeState_R52(f *testing.F) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, st := range []*State{
		{App: "hello"},
		{App: "hello", Installed: &Installed{Version: "1.0.0", SHA256: "ab"}, Previous: &Installed{Version: "0.9.0"}},
		{App: "hello", Pending: &Pending{Version: "2.0.0", SHA256: "cd", Tries: 2, Started: at, Rollback: "health check: exit 1"},
			Bad: map[string]Bad{"1.5.0": {Reason: "crash loop", At: at}}, History: []string{"0.9.0", "1.0.0"},
			Failure: &RollbackFailed{Version: "2.0.0", Reason: "r", Error: "e", At: at}, Lost: true},
	} {
		b, err := encodeState(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"ferry-install-state/v1","sha256":"","state":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b, "hello")
		if err != nil {
			return
		}
		if st.App != "hello" {
			t.Fatalf("decoded a state for app %q", st.App)
		}
		if st.Pending != nil && st.Pending.Version == "" {
			t.Fatal("accepted a pending install without a version")
		}
		again, err := encodeState(st)
		if err != nil {
			t.Fatalf("accepted state does not encode: %v", err)
		}
		st2, err := decodeState(again, "hello")
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		third, _ := encodeState(st2)
		if !bytes.Equal(again, third) {
			t.Fatalf("state does not round-trip:\n%s\n%s", again, third)
		}
		if _, err := decodeState(b, "other"); err == nil {
			t.Fatal("a state for hello decoded as another app's")
		}
	})
}
