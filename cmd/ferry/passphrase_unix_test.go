//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runOnTerminal runs a ferry command line on a pseudo-terminal (through
// util-linux script), typing input, and returns its output and error.
func runOnTerminal(t *testing.T, dir, cmdline, input string) (string, error) {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script (util-linux) to run ferry on a terminal; .ci/run installs it")
	}
	cmd := exec.Command(script, "-qec", cmdline, "/dev/null")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(input)
	cmd.Env = append(os.Environ(), envPassphrase+"=", envInsecureWorkFactor+"=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPromptAsksAgain: a wrong passphrase typed at the prompt is asked for
// again, up to three times in all; a short new passphrase gets a warning.
func TestPromptAsksAgain(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runOnTerminal(t, dir, "ferry init repo", "abc\nabc\n")
	if err != nil || !strings.Contains(out, "ferry: warning: the passphrase has 3 characters") {
		t.Fatalf("init with a short passphrase: %v\n%s", err, out)
	}
	publish := "ferry release publish --repo repo --offline-keys repo/keys --app hello --platform linux/amd64 hello --version "

	out, err = runOnTerminal(t, dir, publish+"1.0.0", "wrong\nabc\n")
	if err != nil || strings.Count(out, "Passphrase:") != 2 || !strings.Contains(out, "ferry: wrong passphrase for ") ||
		!strings.Contains(out, "published hello/1.0.0/") {
		t.Fatalf("one wrong passphrase, then the right one: %v\n%s", err, out)
	}

	out, err = runOnTerminal(t, dir, publish+"1.1.0", "no\nnope\nstill not\n")
	if err == nil || strings.Count(out, "Passphrase:") != 3 || !strings.Contains(out, "(3 attempts)") ||
		strings.Contains(out, "published") {
		t.Fatalf("three wrong passphrases: %v\n%s", err, out)
	}
}
