package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"syscall"
	"testing"

	"github.com/ferry-updates/ferry/internal/faultfs"
)

// memCase is one strategy installed on a faultfs.Mem: it can install v1 and
// v2 and check what is live.
type memCase struct {
	name  string
	kind  string // KindBinary for the Binary strategy; an archive kind for Slots
	adopt bool   // 1.0.0 is written by other means: 2.0.0 is a first self-update
}

var memCases = []memCase{{"binary", KindBinary, false}, {"binary-adopted", KindBinary, true},
	{"slots-tar.gz", KindTarGz, false}, {"slots-zip", KindZip, false}, {"slots-raw", "raw", false}}

type memRig struct {
	t    *testing.T
	m    *faultfs.Mem
	c    memCase
	h    *hooks
	inst interface {
		Apply(context.Context, Artifact) (Result, error)
		Recover(context.Context) (Result, error)
		State(context.Context) (State, error)
	}
}

func content(v string) string { return "#!/bin/sh\necho " + v + "\n" + strings.Repeat("x", 3000) }

func newMemRig(t *testing.T, c memCase, healthy bool) *memRig {
	m := faultfs.NewMem()
	m.MkdirAll("/dl", 0o755)
	m.MkdirAll("/bin", 0o755)
	m.SyncDir("/")
	r := &memRig{t: t, m: m, c: c}
	if c.kind == KindBinary {
		b := &Binary{App: "app", Target: "/bin/app", StateDir: "/state"}
		r.inst, r.h = b, &b.hooks
	} else {
		s := &Slots{Root: "/srv", App: "app"}
		r.inst, r.h = s, &s.hooks
	}
	r.h.fs = m
	r.h.healthFn = func(ctx context.Context, env []string) error {
		if healthy || strings.Contains(strings.Join(env, " "), "FERRY_VERSION=1.0.0") {
			return nil
		}
		return errors.New("unhealthy")
	}
	return r
}

var bodies = map[string][]byte{}

func (r *memRig) artifact(v string) Artifact {
	kind := r.c.kind
	body := bodies[kind+v]
	switch {
	case kind == KindBinary || kind == "raw":
		kind, body = KindBinary, []byte(content(v))
	case body == nil:
		body = archive(r.t, kind, []entry{{name: "app", body: content(v), mode: 0o755}, {name: "lib/data.txt", body: "data " + v}})
		bodies[kind+v] = body
	}
	file := "/dl/" + v
	if err := r.m.WriteFile(file, body, 0o600); err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return Artifact{File: file, Length: int64(len(body)), Hashes: map[string][]byte{"sha256": sum[:]}, App: "app", Version: v, Kind: kind}
}

func (r *memRig) read(name string) string {
	f, err := r.m.Open(name)
	if err != nil {
		return "<missing>"
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

// live returns the version whose intact files are live ("" if none is).
func (r *memRig) live() string {
	if r.c.kind == KindBinary {
		return versionOf(r.read("/bin/app"))
	}
	v := versionOf(r.read("/srv/app/current/app"))
	if r.c.kind != "raw" && r.read("/srv/app/current/lib/data.txt") != "data "+v {
		return ""
	}
	return v
}

// kept reports whether v's files are intact somewhere for rollback.
func (r *memRig) kept(v string) bool {
	if r.c.kind == KindBinary {
		return versionOf(r.read("/bin/.app.ferry-old")) == v
	}
	return versionOf(r.read(path.Join("/srv/app/versions", v, "app"))) == v
}

func versionOf(s string) string {
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if s == content(v) {
			return v
		}
	}
	return ""
}

// check recovers and verifies the invariants: exactly the old or the new
// version is live and intact, the state agrees with it, the previous
// version is intact if the new one is live, and no staging is left.
func (r *memRig) check(what string, healthy bool) {
	t := r.t
	t.Helper()
	ctx := context.Background()
	if _, err := r.inst.Recover(ctx); err != nil && !errors.Is(err, ErrRolledBack) {
		t.Fatalf("%s: recover: %v", what, err)
	}
	live := r.live()
	st, err := r.inst.State(ctx)
	if err != nil {
		t.Fatalf("%s: state: %v", what, err)
	}
	switch {
	case live == "":
		t.Fatalf("%s: neither version is live and intact", what)
	case !healthy && live != "1.0.0":
		t.Fatalf("%s: unhealthy %s stayed live", what, live)
	case !r.agrees(st, live):
		t.Fatalf("%s: state %+v / pending %+v disagrees with live %s", what, st.Installed, st.Pending, live)
	case live == "2.0.0" && !r.kept("1.0.0"):
		t.Fatalf("%s: previous version not intact", what)
	}
	for _, dir := range []string{"/bin", "/srv/app"} {
		ents, _ := r.m.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "ferry-new") || e.Name() == ".staging" || e.Name() == ".current-new" {
				t.Fatalf("%s: leftover %s/%s", what, dir, e.Name())
			}
		}
	}
}

// agrees reports whether st records live as installed (see stateAgrees).
func (r *memRig) agrees(st State, live string) bool {
	if st.Pending != nil {
		return false
	}
	if r.c.adopt && live == "1.0.0" {
		sum := sha256.Sum256([]byte(content("1.0.0")))
		return st.Installed == nil || st.Installed.Version == "" && st.Installed.SHA256 == hex.EncodeToString(sum[:])
	}
	return st.Installed != nil && st.Installed.Version == live
}

// install1 puts 1.0.0 in place: installed by ferry, or written directly.
func (r *memRig) install1() {
	if !r.c.adopt {
		if _, err := r.inst.Apply(context.Background(), r.artifact("1.0.0")); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	if err := r.m.WriteFile("/bin/app", []byte(content("1.0.0")), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

// applyAgrees checks, before any recovery, that what Apply returned is
// what the state file says: a plain error never comes with a committed new
// version, and success always does.
func (r *memRig) applyAgrees(what string, res Result, err error) {
	r.t.Helper()
	name := "/state/state.json"
	if r.c.kind != KindBinary {
		name = "/srv/app/state.json"
	}
	st, _, lerr := loadState(r.m, name, "app")
	if lerr != nil {
		return // the fault hit reading it back
	}
	committed := st.Installed != nil && st.Installed.Version == "2.0.0" && st.Pending == nil
	var re *RollbackError
	switch {
	case err == nil && (!committed || res.Version != "2.0.0"):
		r.t.Fatalf("%s: Apply succeeded with %+v, state installed %+v pending %+v", what, res, st.Installed, st.Pending)
	case err != nil && committed && !errors.As(err, &re):
		r.t.Fatalf("%s: Apply failed (%v) but the state committed 2.0.0", what, err)
	}
}

// forEachOp runs an install of 2.0.0 over 1.0.0 once per mutating
// operation, with inject arming a fault at that operation, until an
// install runs to its end without reaching it. It returns the number of
// operations faulted per case ("binary healthy=true").
func forEachOp(t *testing.T, inject func(r *memRig, op int), after func(r *memRig, what string, healthy bool, res Result, err error)) map[string]int {
	points := map[string]int{}
	for _, c := range memCases {
		for _, healthy := range []bool{true, false} {
			for n := 1; ; n++ {
				r := newMemRig(t, c, healthy)
				r.install1()
				a := r.artifact("2.0.0")
				base := r.m.Ops()
				inject(r, base+n)
				res, err := r.inst.Apply(context.Background(), a)
				what := fmt.Sprintf("%s healthy=%v op %d (err %v)", c.name, healthy, n, err)
				reached := r.m.Ops() >= base+n
				after(r, what, healthy, res, err)
				if !reached {
					break
				}
				points[fmt.Sprintf("%s healthy=%v", c.name, healthy)]++
			}
		}
	}
	return points
}

// minFaultPoints is, per case, how many operations an install of 2.0.0
// over 1.0.0 performs today, each one a point where the fault tests inject
// a failure. A change that makes the installer skip the fault-injecting
// file system (or an install do less) fails checkFaultPoints instead of
// quietly testing fewer points; a new operation only raises the count
// (then raise the floor too).
var minFaultPoints = map[string]int{
	"binary healthy=true": 38, "binary healthy=false": 53,
	"binary-adopted healthy=true": 40, "binary-adopted healthy=false": 55,
	"slots-tar.gz healthy=true": 54, "slots-tar.gz healthy=false": 69,
	"slots-zip healthy=true": 54, "slots-zip healthy=false": 69,
	"slots-raw healthy=true": 46, "slots-raw healthy=false": 61,
}

func checkFaultPoints(t *testing.T, what string, points map[string]int) {
	t.Helper()
	for name, floor := range minFaultPoints {
		if points[name] < floor {
			t.Errorf("%s: %s faulted %d operations, want at least %d", what, name, points[name], floor)
		}
	}
	if len(points) != len(minFaultPoints) {
		t.Errorf("%s: cases %v, want those of minFaultPoints", what, points)
	}
}

func TestFaultsDuringInstall_R46(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO, syscall.EROFS} {
		points := forEachOp(t, func(r *memRig, op int) { r.m.FailAt(op, errno) }, func(r *memRig, what string, healthy bool, res Result, err error) {
			r.applyAgrees(errno.Error()+" "+what, res, err)
			r.check(errno.Error()+" "+what, healthy)
		})
		checkFaultPoints(t, errno.Error(), points)
	}
}

func TestPowerLossDropsUnsynced_R43(t *testing.T) {
	points := forEachOp(t, func(r *memRig, op int) { r.m.CrashAt(op) }, func(r *memRig, what string, healthy bool, _ Result, _ error) {
		r.m.Reboot()
		r.check("power loss "+what, healthy)
	})
	checkFaultPoints(t, "power loss", points)
}

// TestLostBackupFailsLoudly_R45 deletes the kept copies on the in-memory FS
// before a rollback is needed.
func TestLostBackupFailsLoudly_R45(t *testing.T) {
	for _, c := range memCases {
		r := newMemRig(t, c, false)
		r.install1()
		a := r.artifact("2.0.0")
		r.h.healthFn = func(context.Context, []string) error {
			r.m.RemoveAll("/bin/.app.ferry-old")
			r.m.RemoveAll("/srv/app/versions/1.0.0")
			return errors.New("unhealthy")
		}
		_, err := r.inst.Apply(context.Background(), a)
		var re *RollbackError
		if !errors.As(err, &re) {
			t.Fatalf("%s: got %v, want *RollbackError", c.name, err)
		}
		if r.live() != "2.0.0" {
			t.Fatalf("%s: a failed rollback must leave the new version rather than nothing", c.name)
		}
	}
}
