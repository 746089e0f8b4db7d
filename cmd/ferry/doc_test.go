package main

// The documentation runs as written. TestDocs takes the ```sh blocks of
// the sections listed in docRuns straight out of the Markdown files, joins
// each file's blocks into one shell script and runs it with sh -e in a
// fresh copy of the checkout (the git-tracked and untracked, not ignored,
// files), with a fresh HOME, so a command shown in the docs that no longer
// works fails the test. TestReadmeEmbedding compiles the README's ```go
// block against this module.
//
// To run a new doc (docs/keys.md, say):
//  1. Put the commands in ```sh blocks under one or more headings. They run
//     in order, in one shell, from the root of a fresh copy of the
//     checkout, the way a reader would paste them: a block may cd, export
//     and use what an earlier block made. A doc that needs the ferry
//     binary builds it the way the README does (go build -o DIR/ferry
//     ./cmd/ferry), or calls plain "ferry", which is on PATH (this test
//     binary).
//  2. Add {file, headings, platform} to docRuns below. A heading selects
//     its section: everything up to the next heading of the same or a
//     higher level, so "Quickstart" includes its "###" subsections. Blocks
//     in other languages (```text, ```go, untagged) are not run. A test
//     fails if a heading is missing or has no ```sh block.
//
// What the harness changes, and nothing else:
//   - A command that ends with "&" (a server) runs in the background, and
//     the next line waits until its --addr accepts connections (failing if
//     it exits first). At the end every background command gets SIGINT.
//   - Every fixed loopback port (127.0.0.1:8443, localhost:8443) is mapped
//     to a free port, the same one throughout the script, so that parallel
//     test runs on one machine do not collide. Port 0 is left alone.
//   - The environment: HOME is a fresh directory, XDG_* and FERRY_* are
//     unset (so the doc must export what it needs), the scrypt work factor of new keys is
//     lowered (FERRY_INSECURE_SCRYPT_WORK_FACTOR) and go builds with
//     -trimpath so the build cache is shared between runs.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docRuns lists the documents whose shell blocks TestDocs runs, and the
// headings (text without the leading #s) whose sections are run.
var docRuns = []struct {
	file     string   // relative to the module root
	headings []string // sections run, in the order of the file
	platform string   // GOOS/GOARCH the commands are written for ("": any)
}{
	{"README.md", []string{"Quickstart", "Staged rollouts", "Dashboard"}, "linux/amd64"},
	{"docs/keys.md", keysDocSections, "linux/amd64"},
	{"docs/signers.md", []string{"A key of your own"}, ""},
	{"docs/publishing.md", []string{"Remote publishing from CI", "Static hosting and CDNs"}, "linux/amd64"},
	{"docs/rollouts.md", []string{"Staged rollouts from the command line", "Rollouts through ferry serve"}, "linux/amd64"},
	{"docs/agent.md", []string{"Try it on one machine"}, "linux/amd64"},
	{"docs/audit.md", []string{"Checking a log"}, ""},
	{"docs/reporting.md", []string{"Try it on one machine"}, "linux/amd64"},
	{"docs/metrics.md", []string{"Try it"}, "linux/amd64"},
	{"docs/dashboard.md", []string{"Try it"}, "linux/amd64"},
}

// keysDocSections are the sections of docs/keys.md with commands.
var keysDocSections = []string{"A first ceremony for three root holders", "Rotating each role", "Recovery runbook"}

// docScript returns the ```sh blocks of the sections named by headings,
// in file order, joined into one script. Every heading must exist and have
// at least one sh block, so renaming a section cannot silently skip it.
func docScript(md string, headings []string) (string, error) {
	var b strings.Builder
	for _, h := range headings {
		sec, err := mdSection(md, h)
		if err != nil {
			return "", err
		}
		blocks := mdBlocks(sec, "sh")
		if len(blocks) == 0 {
			return "", fmt.Errorf("section %q has no ```sh block", h)
		}
		for _, bl := range blocks {
			b.WriteString(bl)
		}
	}
	return b.String(), nil
}

var headingRE = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*$`)

// mdSection returns the lines from the heading whose text is heading up to
// the next heading of the same or a higher level. Lines inside code fences
// are never taken for headings.
func mdSection(md, heading string) (string, error) {
	var out strings.Builder
	level := 0 // level of the section being copied; 0 before it
	fenced := false
	for _, line := range strings.SplitAfter(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if m := headingRE.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil && !fenced {
			switch {
			case level == 0 && m[2] == heading:
				level = len(m[1])
			case level > 0 && len(m[1]) <= level:
				return out.String(), nil
			}
		}
		if level > 0 {
			out.WriteString(line)
		}
	}
	if level == 0 {
		return "", fmt.Errorf("no heading %q", heading)
	}
	return out.String(), nil
}

// mdBlocks returns the contents of the fenced code blocks tagged lang.
func mdBlocks(md, lang string) []string {
	var blocks []string
	var cur strings.Builder
	in, keep := false, false
	for _, line := range strings.SplitAfter(md, "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trim, "```"):
			in, keep = true, strings.TrimSpace(strings.TrimPrefix(trim, "```")) == lang
			cur.Reset()
		case in && trim == "```":
			if keep {
				blocks = append(blocks, cur.String())
			}
			in = false
		case in:
			cur.WriteString(line)
		}
	}
	return blocks
}

// moduleRoot is the directory of ferry's go.mod, two levels up.
func moduleRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module github.com/ferry-updates/ferry\n") {
		t.Fatalf("%s is not ferry's module root: %v", root, err)
	}
	return root
}

// TestReadmeEmbedding compiles and vets the ```go block of the README's
// "Embedding the client library" section as a program of its own, in a
// module that requires ferry through a replace directive pointing at this
// checkout. It builds offline (GOPROXY=off), from the module cache.
func TestReadmeEmbedding(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet on the README's example")
	}
	root := moduleRoot(t)
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := mdSection(string(md), "Embedding the client library")
	if err != nil {
		t.Fatal(err)
	}
	blocks := mdBlocks(sec, "go")
	if len(blocks) != 1 {
		t.Fatalf("want one ```go block in the embedding section, found %d", len(blocks))
	}
	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	gomod := fmt.Sprintf("module example.com/hello\n\ngo 1.26.8\n\nrequire github.com/ferry-updates/ferry v0.0.0\n\nreplace github.com/ferry-updates/ferry => %s\n", root)
	for name, b := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(blocks[0])} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("go %s: %v", strings.Join(args, " "), err)
			}
			t.Fatalf("go %s: %v\n%s\n--- main.go:\n%s", strings.Join(args, " "), err, out, blocks[0])
		}
	}
	goCmd("vet", ".")
}
