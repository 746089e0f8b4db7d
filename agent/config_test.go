package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
state_dir = "/var/lib/ferry-agent"

[[app]]
name = "hello"
urls = ["https://updates.example.com/"]
trusted_root = "/etc/ferry/root.json"
[app.install]
strategy = "binary"
target = "/usr/local/bin/hello"
`

func TestConfigDefaults(t *testing.T) {
	c, err := Parse("/etc/ferry/agent.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != time.Hour || c.Jitter != 6*time.Minute || c.BackoffMax != 6*time.Hour || c.MaxStaleness != 24*time.Hour {
		t.Errorf("defaults: interval %v jitter %v backoff_max %v max_staleness %v", c.Interval, c.Jitter, c.BackoffMax, c.MaxStaleness)
	}
	a := c.Apps[0]
	if a.Channel != "stable" || a.Platform == "" || a.Window != nil || a.URLs[0] != "https://updates.example.com/" {
		t.Errorf("app defaults: %+v", a)
	}
}

func TestConfigRelativePaths(t *testing.T) {
	src := strings.NewReplacer(`"/var/lib/ferry-agent"`, `"state"`, `"/etc/ferry/root.json"`, `"root.json"`,
		`"/usr/local/bin/hello"`, `"bin/hello"`).Replace(minimal) +
		"[app.health]\ncmd = [\"bin/hello\", \"--version\"]\n"
	src = strings.Replace(src, "[app.install]", "restart = [\"systemctl\", \"restart\", \"hello\"]\n[app.install]", 1)
	c, err := Parse("/etc/ferry/agent.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	for got, want := range map[string]string{
		c.StateDir: "/etc/ferry/state", a.TrustedRoot: "/etc/ferry/root.json", a.Target: "/etc/ferry/bin/hello",
		a.HealthCmd[0]: "/etc/ferry/bin/hello", a.Restart[0]: "systemctl",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestConfigErrors: each bad file is refused with one line that names the
// file, the line and what is wrong.
func TestConfigErrors(t *testing.T) {
	second := minimal + `
[[app]]
name = "world"
urls = ["https://updates.example.com/"]
trusted_root = "/etc/ferry/root.json"
[app.install]
strategy = "slots"
root = "/opt/apps"
`
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown top-level key", "intervall = \"1h\"\n" + minimal, `a.toml:1: unknown key "intervall"`},
		{"unknown app key", strings.Replace(minimal, `name = "hello"`, "name = \"hello\"\nchanel = \"beta\"", 1), `a.toml:6: unknown key "app.chanel"`},
		{"unknown table", minimal + "[app.heath]\ncmd = [\"x\"]\n", `a.toml:11: unknown key "app.heath"`},
		{"unknown key in the second app", second + "keep_all = true\n", `a.toml:19: unknown key "app.install.keep_all"`},
		{"bad duration", "interval = \"soon\"\n" + minimal, `a.toml:1: interval: "soon" is not a duration`},
		{"wrong type", strings.Replace(minimal, `urls = ["https://updates.example.com/"]`, `urls = "https://updates.example.com/"`, 1), `a.toml:6: app.urls: incompatible types`},
		{"syntax", minimal + "[[app]\n", `a.toml:12:`},
		{"no state_dir", strings.Replace(minimal, `state_dir = "/var/lib/ferry-agent"`, "", 1), `a.toml: state_dir: required`},
		{"no app", "state_dir = \"/x\"\n", `no [[app]]`},
		{"plain http", strings.Replace(minimal, "https://", "http://", 1), `a.toml:6: app "hello": urls: "http://updates.example.com/"`},
		{"no root", strings.Replace(minimal, `trusted_root = "/etc/ferry/root.json"`, "", 1), `a.toml:4: app "hello": trusted_root: required`},
		{"bad channel", strings.Replace(minimal, `name = "hello"`, "name = \"hello\"\nchannel = \"Beta\"", 1), `a.toml:6: app "hello": channel: invalid channel "Beta"`},
		{"bad strategy", strings.Replace(minimal, `"binary"`, `"tarball"`, 1), `a.toml:9: app "hello": install.strategy: "tarball": want "binary" or "slots"`},
		{"binary without target", strings.Replace(minimal, `target = "/usr/local/bin/hello"`, "", 1), `a.toml:8: app "hello": install.target: required`},
		{"slots keep", strings.Replace(second, `root = "/opt/apps"`, "root = \"/opt/apps\"\nkeep = 1", 1), `a.toml:19: app "world": install.keep: 1: at least 2`},
		{"health without check", minimal + "[app.health]\ntimeout = \"5s\"\n", `a.toml:11: app "hello": health: needs cmd or url`},
		{"bad window hours", minimal + "[app.window]\nhours = \"2-5\"\n", `a.toml:11: app "hello": window: hours "2-5"`},
		{"bad window day", minimal + "[app.window]\ndays = [\"someday\"]\n", `a.toml:11: app "hello": window: days: "someday"`},
		{"bad time zone", minimal + "[app.window]\ntime_zone = \"Mars/Olympus\"\n", `a.toml:11: app "hello": window: time_zone "Mars/Olympus": unknown`},
		{"duplicate name", strings.Replace(second, `name = "world"`, `name = "hello"`, 1), `a.toml:13: app "hello": configured twice`},
		{"jitter too long", "interval = \"1m\"\njitter = \"2m\"\n" + minimal, `a.toml:2: jitter 2m0s: at most the interval`},
		{"staleness too short", "interval = \"1h\"\nmax_staleness = \"1h\"\n" + minimal, `a.toml:2: max_staleness 1h0m0s: must be longer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("a.toml", []byte(tc.src))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "a.toml") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line containing %q", msg, tc.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("%T is not a *ConfigError", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(f, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(f); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestKeyIndex(t *testing.T) {
	src := `a = 1
"quoted.key" = 2
b = [
  "x = 1",
]
s = """
c = 3
"""
[[app]]
name = "x" # c = 4
t.u = 5
[app.install]
v = 6
[[app]]
name = "y"
`
	idx := scanKeys(src)
	for k, want := range map[string]int{`a`: 1, `"quoted.key"`: 2, `b`: 3, `c`: 0, `app`: 9, `app.name`: 10, `app.t.u`: 11, `app.install.v`: 13, `app.install.w`: 12} {
		if got := idx.lineOf(k); got != want {
			t.Errorf("lineOf(%s) = %d, want %d", k, got, want)
		}
	}
	if got := idx.lineIn("app.name", 1); got != 15 {
		t.Errorf("lineIn(app.name, 1) = %d, want 15", got)
	}
	if got := idx.lineIn("b", -1); got != 3 {
		t.Errorf("lineIn(b, top) = %d", got)
	}
}
