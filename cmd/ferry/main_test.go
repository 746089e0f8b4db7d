package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
)

// testCommands are the programs that TestMain puts on PATH (each is this
// test binary under another name); test files add their own in init.
var testCommands = map[string]func(){
	"ferry":                func() { os.Exit(Main()) },
	"ferry-test-plainhttp": func() { os.Exit(plainHTTP()) },
}

// plainHTTP implements "ferry-test-plainhttp DIR URLFILE": serve DIR over
// plain HTTP on a free loopback port until killed, after writing the URL
// to URLFILE. The attack scripts use it as a real server that ferry must
// refuse because of its scheme, not because it is unreachable.
func plainHTTP() int {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ferry-test-plainhttp DIR URLFILE")
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(os.Args[2], []byte("http://"+ln.Addr().String()+"/\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, http.Serve(ln, http.FileServer(http.Dir(os.Args[1]))))
	return 1
}

func TestMain(m *testing.M) { testscript.Main(m, testCommands) }

// TestScripts runs the end-to-end scripts in testdata/*.txtar: each runs
// the real ferry binary (this test binary) as a user would type it.
func TestScripts(t *testing.T) {
	p := scriptParams()
	p.Dir = "testdata"
	testscript.Run(t, p)
}

func scriptParams() testscript.Params {
	return testscript.Params{
		Setup: scriptSetup,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"waitfile":    cmdWaitfile,
			"flipbyte":    cmdFlipbyte,
			"flipsig":     cmdFlipsig,
			"futuretime":  cmdFuturetime,
			"lastline":    cmdLastline,
			"treehash":    cmdTreehash,
			"setmatch":    cmdSetmatch,
			"hostport":    cmdHostport,
			"filemode":    cmdFilemode,
			"reportcheck": cmdReportcheck,
		},
		RequireExplicitExec: true,
	}
}

// runAttack runs one script of testdata/attacks, named after the
// THREATS.md row it shows being refused through the command line.
func runAttack(t *testing.T, name string) {
	t.Parallel()
	p := scriptParams()
	p.Files = []string{filepath.Join("testdata", "attacks", name+".txtar")}
	testscript.Run(t, p)
}

func TestCLITamperedMetadata_R1(t *testing.T)      { runAttack(t, "R1_tampered_metadata") }
func TestCLIFreeze_R13(t *testing.T)               { runAttack(t, "R13_freeze") }
func TestCLITamperedArtifact_R19(t *testing.T)     { runAttack(t, "R19_tampered_artifact") }
func TestCLIPlantedPartial_R24(t *testing.T)       { runAttack(t, "R24_planted_partial") }
func TestCLIMirrorFailover_R28(t *testing.T)       { runAttack(t, "R28_mirror_failover") }
func TestCLICompromisedServer_R31(t *testing.T)    { runAttack(t, "R31_compromised_server") }
func TestCLIPlainHTTP_R32(t *testing.T)            { runAttack(t, "R32_plain_http") }
func TestCLIUntrustedCertificate_R33(t *testing.T) { runAttack(t, "R33_untrusted_certificate") }
func TestCLINoTrustRoot_R38(t *testing.T)          { runAttack(t, "R38_no_trust_root") }
func TestCLIRollbackFailed_R45(t *testing.T)       { runAttack(t, "R45_rollback_failed") }
func TestCLIRemotePublishRefused_R53(t *testing.T) { runAttack(t, "R53_remote_publish_refused") }
func TestCurrentVersionGrammar_R49(t *testing.T)   { runAttack(t, "R49_current_version") }

// TestAttackScriptsRun makes sure no script in testdata/attacks is left
// without a Test..._R<n> function above.
func TestAttackScriptsRun(t *testing.T) {
	src, err := os.ReadFile("main_test.go")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "attacks", "*.txtar"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		if !strings.Contains(string(src), `runAttack(t, "`+name+`")`) {
			t.Errorf("%s is not run by any test", f)
		}
	}
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

// cmdFlipsig implements "flipsig FILE": change one hex digit of the first
// signature in the metadata file FILE.
func cmdFlipsig(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: flipsig FILE")
	}
	_, err := flipByte(ts.MkAbs(args[0]), func(b []byte) int {
		if loc := sigRE.FindIndex(b); loc != nil {
			return loc[1]
		}
		return -1
	})
	ts.Check(err)
}

// cmdFuturetime implements "futuretime DURATION VAR": set VAR to the Unix
// time DURATION from now.
func cmdFuturetime(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: futuretime DURATION VAR")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	ts.Setenv(args[1], strconv.FormatInt(time.Now().Add(d).Unix(), 10))
}

// cmdHostport implements "hostport URL VAR": set VAR to the host:port of URL.
func cmdHostport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: hostport URL VAR")
	}
	u, err := url.Parse(args[0])
	ts.Check(err)
	ts.Setenv(args[1], u.Host)
}

// cmdFilemode implements "filemode FILE MODE": FILE's permission bits are
// MODE (octal).
func cmdFilemode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o", args[0], got)
	}
}

// TestDemo runs "ferry demo" in-process and checks that every step ran.
func TestDemo(t *testing.T) {
	t.Parallel()
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
		"updated hello 1.0.0 → 1.1.0 (binary at ",
		"hello 1.2.0 failed its health check (2 attempts failed",
		"rolled back to 1.1.0; 1.2.0 marked bad",
		"1.2.0 is not retried until a newer release appears",
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

// cmdLastline implements "lastline FILE OUT": write the last non-empty line
// of FILE (stdout, say) to OUT, as "| tail -n 1 >" would.
func cmdLastline(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: lastline FILE OUT")
	}
	lines := strings.Split(strings.TrimSpace(ts.ReadFile(args[0])), "\n")
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(lines[len(lines)-1]+"\n"), 0o600))
}

// cmdTreehash implements "treehash DIR OUT": write one line "sha256 path"
// per regular file under DIR, sorted, to OUT; cmp two of them to show that
// nothing under DIR changed.
func cmdTreehash(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: treehash DIR OUT")
	}
	root := ts.MkAbs(args[0])
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, fmt.Sprintf("%x %s", sha256.Sum256(b), filepath.ToSlash(rel)))
		return nil
	})
	ts.Check(err)
	sort.Strings(lines)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
}

// cmdSetmatch implements "setmatch FILE REGEXP VAR": set VAR to the first
// submatch of REGEXP (multi-line mode) in FILE (stdout, say).
func cmdSetmatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: setmatch FILE REGEXP VAR")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[0]))
	if len(m) < 2 {
		ts.Fatalf("setmatch: no match for %s with a submatch in %s", args[1], args[0])
	}
	ts.Setenv(args[2], m[1])
}
