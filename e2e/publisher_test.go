package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStolenServerReplaysOldRole_R63 (review F0): a thief who holds the
// server restores an old copy of the repository, in which hello's role
// signs no minimum safe version, after the pipeline raised it to 1.1.0.
// The pipeline's next ferry release publish --server must refuse to sign
// on top of the old role (which would sign a newer role without the
// minimum, so that the thief's rollout key could pull the fleet back to
// 1.0.0) and change nothing; against the honest server it publishes. A
// lower minimum is refused without --lower-min, and the server takes it
// with it.
func TestStolenServerReplaysOldRole_R63(t *testing.T) {
	f := newFerryCmd(t)
	f.run("init", "repo", "--offline-keys", "offline")
	f.run("key", "generate", "--out", "ci/hello.key")
	publish := func(args ...string) {
		t.Helper()
		v := args[len(args)-1]
		src := f.write(filepath.Join("dist", v, "hello"), program("hello", v), 0o755)
		f.run(append(append([]string{"release", "publish"}, args[:len(args)-1]...),
			"--app-key", "ci/hello.key", "--app", "hello", "--version", v, "--platform", platform, src)...)
	}
	publish("--repo", "repo", "--offline-keys", "offline", "1.0.0")
	tok := f.write("ci/hello.token", strings.TrimSpace(f.run("token", "create", "--repo", "repo", "--app", "hello"))+"\n", 0o600)
	srv := f.serve("repo")
	remote := []string{"--server", srv.url, "--ca", srv.ca, "--token-file", tok}
	publish(append(remote, "1.1.0")...)
	// The thief's copy: hello's role at version 2, no minimum.
	if out, err := exec.Command("cp", "-a", f.path("repo"), f.path("stolen")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	f.run(append([]string{"release", "min-version"}, append(remote, "--app-key", "ci/hello.key", "--app", "hello", "1.1.0")...)...)
	recs, _ := filepath.Glob(f.path(".local", "state", "ferry", "publisher", "*", "hello.json"))
	if len(recs) != 1 {
		t.Fatalf("publisher records %v: want one hello.json in the default state directory", recs)
	}

	// The thief serves the old repository at the same address.
	srv.stop()
	if err := os.Rename(f.path("repo"), f.path("honest")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.path("stolen"), f.path("repo")); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(srv.url, "https://"), "/")
	stolen := f.serve("repo", "--addr", addr)
	if stolen.url != srv.url {
		t.Fatalf("the thief's server is at %s, not %s", stolen.url, srv.url)
	}
	before := f.run("release", "list", "--repo", "repo")
	src := f.write("dist/1.2.0/hello", program("hello", "1.2.0"), 0o755)
	out, errs, err := f.try(append(append([]string{"release", "publish"}, remote...),
		"--app-key", "ci/hello.key", "--app", "hello", "--version", "1.2.0", "--platform", platform, src)...)
	if err == nil {
		t.Fatalf("the pipeline signed on top of the replayed role:\n%s%s", out, errs)
	}
	if !strings.Contains(errs, "version 2, but this publisher signed version 3") || !strings.Contains(errs, recs[0]) {
		t.Errorf("stderr does not say the role is older than the record, naming it:\n%s", errs)
	}
	if after := f.run("release", "list", "--repo", "repo"); after != before {
		t.Errorf("the refused publish changed the releases:\n%s\nnow:\n%s", before, after)
	}
	for _, args := range [][]string{
		{"release", "min-version", "--app-key", "ci/hello.key", "--app", "hello", "1.0.0"},
		{"repo", "refresh", "--app-key", "ci/hello.key", "--role", "hello"},
	} {
		if out, errs, err := f.try(append(args[:2:2], append(remote, args[2:]...)...)...); err == nil || !strings.Contains(errs, "this publisher signed version 3") {
			t.Errorf("ferry %s on the replayed role: %v\n%s%s", strings.Join(args, " "), err, out, errs)
		}
	}

	// The honest server again: the pipeline publishes, and lowers the
	// minimum only when told to.
	stolen.stop()
	if err := os.Rename(f.path("repo"), f.path("stolen")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.path("honest"), f.path("repo")); err != nil {
		t.Fatal(err)
	}
	honest := f.serve("repo", "--addr", addr)
	publish(append(remote, "1.2.0")...)
	lower := append([]string{"release", "min-version"}, append(remote, "--app-key", "ci/hello.key", "--app", "hello")...)
	if out, errs, err := f.try(append(lower, "1.0.0")...); err == nil || !strings.Contains(errs, "--lower-min") {
		t.Errorf("a lower minimum without --lower-min: %v\n%s%s", err, out, errs)
	}
	f.run(append(lower, "--lower-min", "1.0.0")...)
	honest.stop()
	if got := f.run("rollout", "status", "--repo", "repo", "--app", "hello", "--json"); !strings.Contains(got, `"min_version":"1.0.0"`) {
		t.Errorf("rollout status after --lower-min 1.0.0: %s", got)
	}
}

// TestFreshRunnerWarned_R63 (review 9 F8): a publisher with no record of
// the application (a fresh CI runner without its state directory) trusts
// the role the server serves; it says so, in one line naming the record
// it will write, and says nothing once the record exists.
func TestFreshRunnerWarned_R63(t *testing.T) {
	f := newFerryCmd(t)
	f.run("init", "repo", "--offline-keys", "offline")
	f.run("key", "generate", "--out", "ci/hello.key")
	src := f.write(filepath.Join("dist", "1.0.0", "hello"), program("hello", "1.0.0"), 0o755)
	f.run("release", "publish", "--repo", "repo", "--offline-keys", "offline", "--app-key", "ci/hello.key", "--app", "hello",
		"--version", "1.0.0", "--platform", platform, src)
	tok := f.write("ci/hello.token", strings.TrimSpace(f.run("token", "create", "--repo", "repo", "--app", "hello"))+"\n", 0o600)
	srv := f.serve("repo")
	publish := func(v string) string {
		t.Helper()
		src := f.write(filepath.Join("dist", v, "hello"), program("hello", v), 0o755)
		out, errs, err := f.try("release", "publish", "--server", srv.url, "--ca", srv.ca, "--token-file", tok,
			"--publisher-state", "ci-state", "--app-key", "ci/hello.key", "--app", "hello", "--version", v, "--platform", platform, src)
		if err != nil {
			t.Fatalf("publish %s: %v\n%s%s", v, err, out, errs)
		}
		return errs
	}
	errs := publish("1.1.0") // a fresh runner: no ci-state yet
	rec := filepath.Join("ci-state", "hello.json")
	var warn []string
	for _, l := range strings.Split(errs, "\n") {
		if strings.Contains(l, "warning: no publisher record of hello") {
			warn = append(warn, l)
		}
	}
	if len(warn) != 1 || !strings.Contains(warn[0], rec) || !strings.Contains(warn[0], "version 1") || !strings.Contains(warn[0], "--publisher-state") {
		t.Fatalf("a publish without a record on top of the server's role: want one warning line naming %s and the role's version:\n%s", rec, errs)
	}
	if errs := publish("1.2.0"); strings.Contains(errs, "warning") {
		t.Errorf("a publish with the record kept warned:\n%s", errs)
	}
}
