package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ferry": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/*.txtar: each runs
// the real ferry binary (this test binary) as a user would type it.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Setup: scriptSetup,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"waitfile": cmdWaitfile,
			"flipbyte": cmdFlipbyte,
		},
		RequireExplicitExec: true,
	})
}

func scriptSetup(env *testscript.Env) error {
	// Tests only: keys made by the scripts use a cheap scrypt work factor.
	env.Setenv(envInsecureWorkFactor, "10")
	env.Setenv("PLATFORM", runtime.GOOS+"/"+runtime.GOARCH)
	env.Setenv("PLATDIR", runtime.GOOS+"-"+runtime.GOARCH)
	return nil
}

// cmdWaitfile implements "waitfile FILE VAR": wait up to 20 s for FILE to
// exist with content, then set VAR to its trimmed content.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE VAR")
	}
	p := ts.MkAbs(args[0])
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(p)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			ts.Setenv(args[1], strings.TrimSpace(string(b)))
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile %s: not written within 20s", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdFlipbyte implements "flipbyte GLOB": flip one bit of the middle byte
// of the single file matching GLOB (the length stays the same).
func cmdFlipbyte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: flipbyte GLOB")
	}
	m, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(m) != 1 {
		ts.Fatalf("flipbyte %s: %d files match, want 1", args[0], len(m))
	}
	b, err := os.ReadFile(m[0])
	ts.Check(err)
	if len(b) == 0 {
		ts.Fatalf("flipbyte %s: empty file", m[0])
	}
	b[len(b)/2] ^= 0x01
	ts.Check(os.WriteFile(m[0], b, 0o644))
}

// TestDemo runs "ferry demo" in-process and checks that every step ran.
func TestDemo(t *testing.T) {
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := e.run(ctx, []string{"demo"}); code != 0 {
		t.Fatalf("ferry demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"1.1.0 is available",
		"hello 1.1.0 is up to date",
		"refused:",
		"Every step behaved as described",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "refused:"); n != 2 {
		t.Errorf("demo showed %d refusals, want 2 (artifact and metadata)", n)
	}
}

// TestHelpHasExamples checks that every runnable command shows examples in
// its help, as the brief of the command line requires.
func TestHelpHasExamples(t *testing.T) {
	e := &env{stdin: strings.NewReader(""), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), getenv: os.Getenv}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if (c.Runnable() || c.HasSubCommands()) && strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			if sub.Name() != "help" {
				walk(sub)
			}
		}
	}
	walk(e.rootCmd())
}
