package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/agent"
)

// TestAgentDocConfig parses the commented example configuration of
// docs/agent.md as written (taken out of the file, not copied), and checks
// it says what its comments say.
func TestAgentDocConfig(t *testing.T) {
	c := agentDocConfig(t)
	if c.StateDir != "/var/lib/ferry-agent" || len(c.Apps) != 3 {
		t.Fatalf("state_dir %q, %d apps", c.StateDir, len(c.Apps))
	}
	hello, cli, self := c.Apps[0], c.Apps[1], c.Apps[2]
	if hello.Strategy != "slots" || hello.Channel != "beta" || hello.Window == nil || hello.Repo() != cli.Repo() {
		t.Errorf("hello: %+v (slots, beta, a window, the same repository as hello-cli)", hello)
	}
	if cli.Strategy != "binary" || cli.Installed != "1.4.0" || cli.Channel != "stable" {
		t.Errorf("hello-cli: %+v", cli)
	}
	if self.Target != "/usr/local/bin/ferry" {
		t.Errorf("the self-update's target %q is not the unit's ExecStart binary", self.Target)
	}
}

func agentDocConfig(t *testing.T) *agent.Config {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "agent.md"))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := mdSection(string(md), "Configuration")
	if err != nil {
		t.Fatal(err)
	}
	blocks := mdBlocks(sec, "toml")
	if len(blocks) != 1 {
		t.Fatalf("want one ```toml block in the Configuration section of docs/agent.md, found %d", len(blocks))
	}
	c, err := agent.Parse("/etc/ferry/agent.toml", []byte(blocks[0]))
	if err != nil {
		t.Fatalf("the example of docs/agent.md: %v", err)
	}
	return c
}

// TestSystemdUnit checks contrib/systemd/ferry-agent.service: with
// systemd-analyze verify where systemd is installed (its ExecStart pointed
// at a program that exists here), and its hardening settings everywhere;
// it runs the agent with the docs' configuration path, and may write the
// docs' state directory.
func TestSystemdUnit(t *testing.T) {
	file := filepath.Join(moduleRoot(t), "contrib", "systemd", "ferry-agent.service")
	unit := parseUnit(t, file)
	for key, want := range map[string]string{
		"Service.Type": "notify", "Service.NotifyAccess": "main", "Service.Restart": "on-failure",
		"Service.KillMode": "mixed", "Service.NoNewPrivileges": "yes", "Service.ProtectSystem": "strict",
		"Service.ProtectHome": "yes", "Service.PrivateTmp": "yes", "Service.SystemCallFilter": "@system-service",
		"Service.RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "Service.StateDirectory": "ferry-agent",
		"Service.ExecStart": "/usr/local/bin/ferry agent --config /etc/ferry/agent.toml",
		"Install.WantedBy":  "multi-user.target",
	} {
		if got := unit[key]; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if unit["Service.WatchdogSec"] == "" {
		t.Error("no WatchdogSec: the agent's WATCHDOG=1 would go unchecked")
	}
	c := agentDocConfig(t)
	if !slices.Contains(strings.Fields(unit["Service.ReadWritePaths"]), c.StateDir) {
		t.Errorf("ReadWritePaths %q lacks the docs' state_dir %s", unit["Service.ReadWritePaths"], c.StateDir)
	}
	verifyUnit(t, file)
}

// parseUnit reads a unit file into SECTION.Key = value (the last one wins).
func parseUnit(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a setting: %q", file, n, line)
			}
			out[section+"."+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

var exposureRE = regexp.MustCompile(`Overall exposure level for [^:]+: ([0-9.]+)`)

// verifyUnit runs systemd-analyze verify (any warning fails) and, where
// systemd can rate a unit offline, requires an exposure of at most 3.0.
func verifyUnit(t *testing.T, file string) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit's settings were checked by parsing only")
		return
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to stand in for the ferry binary")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyFile := filepath.Join(dir, filepath.Base(file))
	if err := os.WriteFile(copyFile, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/ferry", truePath)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", copyFile).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--no-pager", copyFile).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if err != nil || m == nil {
		t.Logf("systemd-analyze security --offline not available here: %v", err)
		return
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 3.0 {
		t.Errorf("exposure %s, want at most 3.0 (systemd-analyze security):\n%s", m[1], out)
	}
}
