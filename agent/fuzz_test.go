package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse: any input is refused with one line naming the file, or
// accepted as a configuration whose every application is usable.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "[app.window]\ndays = [\"fri-mon\"]\nhours = \"22:00-02:00\"\ntime_zone = \"UTC\"\n"))
	f.Add([]byte("state_dir = \"x\"\n[[app]]\nname = \"a\"\n[app.health]\ncmd = []\n"))
	f.Add([]byte("a = \"\"\"\nb = 1\n\"\"\"\n[[app]]\n'x.y' = [\n]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("f.toml", b)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "f.toml") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line about f.toml", msg)
			}
			return
		}
		if c.StateDir == "" || len(c.Apps) == 0 || c.Interval < time.Second || c.MaxStaleness <= c.Interval {
			t.Fatalf("accepted an unusable config: %+v", c)
		}
		for _, a := range c.Apps {
			if a.Strategy != "binary" && a.Strategy != "slots" || len(a.URLs) == 0 || a.TrustedRoot == "" {
				t.Fatalf("accepted an unusable app: %+v", a)
			}
		}
	})
}

// TestStatusRoundTrip: what the agent writes, ReadStatus reads back
// unchanged; a file of another format is refused.
func TestStatusRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse(filepath.Join(dir, "a.toml"), []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	b := newStatusBook(dir, c, "0123456789abcdef0123456789abcdef", now)
	b.update("hello", now, func(s *AppStatus) {
		s.Installed, s.Result, s.LastCheck, s.Cohort = "1.2.0", ResultUpdated, &now, &Cohort{Version: "1.2.0", Bucket: 7, BasisPoints: 500}
	})
	b.next(now, now.Add(time.Hour))
	got, err := ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := b.snapshot()
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", *got, want)
	}
	os.WriteFile(filepath.Join(dir, StatusFile), []byte(`{"format":"ferry-agent-status/v0"}`), 0o600)
	if _, err := ReadStatus(dir); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("another format: %v", err)
	}
}
