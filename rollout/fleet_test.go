package rollout

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ferry-updates/ferry/release"
)

// fleet is a simulated fleet at the policy level: install ID -> installed
// version, each installation on its channel. A check runs Choose for every
// installation and installs what it chose.
type fleet struct {
	ids       []string
	channel   map[string]string
	installed map[string]string
}

// newIDs returns n random 128-bit install IDs (32 hex digits), the same
// ones for the same seed.
func newIDs(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ids := make([]string, n)
	var b [16]byte
	for i := range ids {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		ids[i] = hex.EncodeToString(b[:])
	}
	return ids
}

func newFleet(n int, version string) *fleet {
	f := &fleet{ids: newIDs(n, 1), channel: map[string]string{}, installed: map[string]string{}}
	for _, id := range f.ids {
		f.installed[id] = version
	}
	return f
}

// input is what installation id asks with.
func (f *fleet) input(id string, versions []string, d *Doc, min string) Input {
	return Input{Versions: versions, Doc: d, MinVersion: min,
		Installation: Installation{ID: id, Channel: f.channel[id], Installed: f.installed[id]}}
}

// check runs one check on every installation, installs what Choose chose,
// and returns the installations that changed, with the choices.
func (f *fleet) check(t *testing.T, versions []string, d *Doc, min string) map[string]Choice {
	t.Helper()
	moved := map[string]Choice{}
	for _, id := range f.ids {
		c := Choose(f.input(id, versions, d, min))
		if c.Version == "" {
			continue
		}
		if c.Downgrade != (release.CompareVersions(c.Version, f.installed[id]) < 0) {
			t.Fatalf("installation %s on %s: choice %+v has a wrong Downgrade", id, f.installed[id], c)
		}
		moved[id] = c
		f.installed[id] = c.Version
	}
	return moved
}

// on returns the installations running v.
func (f *fleet) on(v string) []string {
	var out []string
	for _, id := range f.ids {
		if f.installed[id] == v {
			out = append(out, id)
		}
	}
	return out
}

// assertShare fails unless got out of n is within 4 standard deviations of
// a share of bp basis points (binomial; the IDs are fixed, so this is
// deterministic, and a wrong bucketing is far outside it).
func assertShare(t *testing.T, what string, got, n, bp int) {
	t.Helper()
	p := float64(bp) / Full
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if want := p * float64(n); math.Abs(float64(got)-want) > 4*sd+0.5 {
		t.Fatalf("%s: %d of %d installations, want %.0f ± %.0f (%s)", what, got, n, want, 4*sd, Percent(bp))
	}
}

func apply(t *testing.T, d *Doc, a Action, signed []string, min string) {
	t.Helper()
	if _, err := d.Apply(a, signed, min); err != nil {
		t.Fatal(err)
	}
}

// TestFleetStagedRollout: 1,000 installations on 1.4.1; 1.4.2 at 5%, then
// 50%, halted, resumed at 100%, then pulled: every step reaches the right
// installations, widening removes nobody, a halt offers the release to no
// new installation and leaves those that have it, and the pull moves
// everyone back to 1.4.1, the newest good release, as a downgrade.
func TestFleetStagedRollout(t *testing.T) {
	const n = 1000
	f := newFleet(n, "1.4.1")
	signed := []string{"1.4.1", "1.4.2"}
	d := &Doc{App: "hello"}

	apply(t, d, Action{Kind: Start, Version: "1.4.2", BasisPoints: 500}, signed, "")
	moved := f.check(t, signed, d, "")
	assertShare(t, "at 5%", len(moved), n, 500)
	for id, c := range moved {
		if c.Version != "1.4.2" || c.Downgrade || Bucket(id, d.Releases["1.4.2"].Salt) >= 500 {
			t.Fatalf("at 5%%: %s got %+v (bucket %d)", id, c, Bucket(id, d.Releases["1.4.2"].Salt))
		}
	}
	at5 := f.on("1.4.2")
	if again := f.check(t, signed, d, ""); len(again) != 0 {
		t.Fatalf("a second check at 5%% moved %d installations", len(again))
	}

	apply(t, d, Action{Kind: Start, Version: "1.4.2", BasisPoints: 5000}, signed, "")
	f.check(t, signed, d, "")
	at50 := f.on("1.4.2")
	assertShare(t, "at 50%", len(at50), n, 5000)
	// Widening removes nobody: every installation offered 1.4.2 at 5% is
	// offered it at 50% too (asked as if it still ran 1.4.1).
	for _, id := range at5 {
		in := f.input(id, signed, d, "")
		in.Installed = "1.4.1"
		if c := Choose(in); c.Version != "1.4.2" {
			t.Fatalf("widening to 50%% dropped %s: %+v", id, c)
		}
	}

	apply(t, d, Action{Kind: Halt, Version: "1.4.2"}, signed, "")
	if moved := f.check(t, signed, d, ""); len(moved) != 0 {
		t.Fatalf("after the halt %d installations moved", len(moved))
	}
	if got := f.on("1.4.2"); !slices.Equal(got, at50) {
		t.Fatalf("the halt changed who runs 1.4.2: %d, was %d", len(got), len(at50))
	}
	// A new installation is not offered the halted release, even in its cohort.
	for _, id := range at50[:10] {
		if c := Choose(Input{Versions: signed, Doc: d, Installation: Installation{ID: id}}); c.Version != "1.4.1" {
			t.Fatalf("a new installation in the halted cohort got %+v", c)
		}
	}

	apply(t, d, Action{Kind: Resume, Version: "1.4.2"}, signed, "")
	apply(t, d, Action{Kind: Start, Version: "1.4.2", BasisPoints: Full}, signed, "")
	f.check(t, signed, d, "")
	if got := len(f.on("1.4.2")); got != n {
		t.Fatalf("at 100%%: %d of %d on 1.4.2", got, n)
	}

	apply(t, d, Action{Kind: Pull, Version: "1.4.2"}, signed, "")
	moved = f.check(t, signed, d, "")
	if len(moved) != n || len(f.on("1.4.1")) != n {
		t.Fatalf("the pull moved %d of %d; %d on 1.4.1", len(moved), n, len(f.on("1.4.1")))
	}
	for id, c := range moved {
		if !c.Downgrade || c.Reason != "installed version pulled" {
			t.Fatalf("%s: pull choice %+v", id, c)
		}
	}
	if again := f.check(t, signed, d, ""); len(again) != 0 {
		t.Fatalf("after the pull a second check moved %d installations (back to the pulled release?)", len(again))
	}
}

// TestFleetPullWithNewerRelease: when the pulled release has a newer one in
// rollout, installations in the newer one's cohort move up to it and the
// others down to the newest older good release; a halted older release is
// not a target.
func TestFleetPullWithNewerRelease(t *testing.T) {
	const n = 1000
	f := newFleet(n, "1.4.2")
	signed := []string{"1.4.0", "1.4.1", "1.4.2", "1.4.3"}
	d := &Doc{App: "hello"}
	apply(t, d, Action{Kind: Halt, Version: "1.4.1"}, signed, "")
	apply(t, d, Action{Kind: Start, Version: "1.4.3", BasisPoints: 1000}, signed, "")
	apply(t, d, Action{Kind: Halt, Version: "1.4.3"}, signed, "")
	apply(t, d, Action{Kind: Pull, Version: "1.4.2"}, signed, "")
	apply(t, d, Action{Kind: Resume, Version: "1.4.3"}, signed, "")
	moved := f.check(t, signed, d, "")
	if len(moved) != n {
		t.Fatalf("the pull moved %d of %d", len(moved), n)
	}
	up := f.on("1.4.3")
	assertShare(t, "moved up to 1.4.3 at 10%", len(up), n, 1000)
	for id, c := range moved {
		inCohort := Bucket(id, d.Releases["1.4.3"].Salt) < 1000
		want := map[bool]string{true: "1.4.3", false: "1.4.0"}[inCohort]
		if c.Version != want || c.Downgrade == inCohort {
			t.Fatalf("%s (in 1.4.3's cohort: %v) got %+v, want %s", id, inCohort, c, want)
		}
	}
}

// TestFleetChannels: a release started in beta reaches beta installations
// only; promoted to stable it reaches everyone; a release in another
// channel (canary) reaches neither.
func TestFleetChannels(t *testing.T) {
	const n = 1000
	f := newFleet(n, "1.4.1")
	for i, id := range f.ids {
		if i%2 == 0 {
			f.channel[id] = "beta"
		} // the others name no channel: stable
	}
	signed := []string{"1.4.1", "1.5.0", "1.6.0-rc.1"}
	d := &Doc{App: "hello"}
	apply(t, d, Action{Kind: Start, Version: "1.5.0", BasisPoints: Full, Channel: "beta"}, signed, "")
	apply(t, d, Action{Kind: Start, Version: "1.6.0-rc.1", BasisPoints: Full, Channel: "canary"}, signed, "")
	moved := f.check(t, signed, d, "")
	if len(moved) != n/2 {
		t.Fatalf("beta release reached %d, want the %d beta installations", len(moved), n/2)
	}
	for id, c := range moved {
		if f.channel[id] != "beta" || c.Version != "1.5.0" {
			t.Fatalf("%s on channel %q got %+v", id, f.channel[id], c)
		}
	}
	// Stable installations are told why.
	if c := Choose(f.input(f.ids[1], signed, d, "")); c.Version != "" || c.Reason != "1.6.0-rc.1 is in channel canary" {
		t.Fatalf("a stable installation: %+v", c)
	}
	apply(t, d, Action{Kind: Promote, Version: "1.5.0", Channel: "stable"}, signed, "")
	moved = f.check(t, signed, d, "")
	if len(moved) != n/2 || len(f.on("1.5.0")) != n {
		t.Fatalf("promotion reached %d; %d on 1.5.0", len(moved), len(f.on("1.5.0")))
	}
	for id := range moved {
		if f.channel[id] == "beta" {
			t.Fatalf("promotion moved beta installation %s again", id)
		}
	}
	if len(f.on("1.6.0-rc.1")) != 0 {
		t.Fatal("a canary release reached a beta or stable installation")
	}
}

// TestFleetMinVersion: installations below the minimum safe version get
// the newest release at or above it that is not pulled, whatever its share
// or halt; the others follow the rollout as usual.
func TestFleetMinVersion(t *testing.T) {
	const n = 1000
	f := newFleet(n, "1.3.0")
	for _, id := range f.ids[n/2:] {
		f.installed[id] = "1.4.0"
	}
	signed := []string{"1.3.0", "1.4.0", "1.4.2", "1.5.0"}
	d := &Doc{App: "hello"}
	apply(t, d, Action{Kind: Start, Version: "1.4.2", BasisPoints: 100}, signed, "1.4.0")
	apply(t, d, Action{Kind: Halt, Version: "1.4.2"}, signed, "1.4.0")
	apply(t, d, Action{Kind: Start, Version: "1.5.0", BasisPoints: Full, Channel: "beta"}, signed, "1.4.0")
	moved := f.check(t, signed, d, "1.4.0")
	if len(moved) != n/2 {
		t.Fatalf("%d moved, want the %d below the minimum", len(moved), n/2)
	}
	for id, c := range moved {
		if c.Version != "1.4.2" || c.Reason != "below minimum safe version 1.4.0" || slices.Index(f.ids, id) >= n/2 {
			t.Fatalf("%s: %+v", id, c)
		}
	}
	// Pulled, 1.4.2 is no target: those still below the minimum get 1.4.0.
	g := newFleet(n, "1.3.0")
	apply(t, d, Action{Kind: Pull, Version: "1.4.2"}, signed, "1.4.0")
	g.check(t, signed, d, "1.4.0")
	if len(g.on("1.4.0")) != n {
		t.Fatalf("with 1.4.2 pulled, %d of %d on 1.4.0", len(g.on("1.4.0")), n)
	}
	// And the pull moves the 1.4.2 installations to 1.4.0 too.
	f.check(t, signed, d, "1.4.0")
	if len(f.on("1.4.0")) != n {
		t.Fatalf("after the pull %d of %d on 1.4.0", len(f.on("1.4.0")), n)
	}
}

// TestDecisionCannotAddRelease_R61: a decision document that names a
// version the application key did not sign, at 100% in every channel,
// even as the target of a pull, never gets it chosen: Choose picks only
// among Versions.
func TestDecisionCannotAddRelease_R61(t *testing.T) {
	f := newFleet(1000, "1.4.1")
	signed := []string{"1.4.0", "1.4.1"}
	d := &Doc{App: "hello", Releases: map[string]Entry{
		"9.9.9": {Channel: DefaultChannel, BasisPoints: Full, State: Active, Salt: salt1},
		"1.4.2": {Channel: DefaultChannel, BasisPoints: Full, State: Active, Salt: salt1},
	}}
	if moved := f.check(t, signed, d, ""); len(moved) != 0 {
		t.Fatalf("a decision about unsigned releases moved %d installations", len(moved))
	}
	d.Releases["1.4.1"] = Entry{Channel: DefaultChannel, BasisPoints: Full, State: Pulled, Salt: salt1}
	f.check(t, signed, d, "")
	if len(f.on("1.4.0")) != 1000 {
		t.Fatalf("the pull went elsewhere than 1.4.0: %d on it", len(f.on("1.4.0")))
	}
	// The publisher refuses to sign such a decision in the first place.
	if _, err := d.Apply(Action{Kind: Start, Version: "9.9.9", BasisPoints: Full}, signed, ""); err == nil {
		t.Fatal("Apply signed a decision about an unsigned release")
	}
	// An invalid version among Versions is never chosen either.
	if c := Choose(Input{Versions: []string{"1.4.1", "v9", "9.9.9+x", "10"}, Installation: Installation{ID: f.ids[0]}}); c.Version != "1.4.1" {
		t.Fatalf("with invalid versions among the signed ones: %+v", c)
	}
	checkRandomInputs(t, func(in Input, c Choice) error {
		if c.Version != "" && !slices.Contains(in.Versions, c.Version) {
			return fmt.Errorf("chose %s, not among the signed %v", c.Version, in.Versions)
		}
		return nil
	})
}

// TestStolenRolloutKeyBelowMin_R63: whatever document the holder of a
// stolen rollout key signs (any share, state or channel of any release,
// older releases at 100%, every release at or above the minimum pulled),
// no installation is offered or moved below the minimum safe version.
func TestStolenRolloutKeyBelowMin_R63(t *testing.T) {
	const n = 1000
	f := newFleet(n, "1.4.2")
	for _, id := range f.ids[:n/4] {
		f.installed[id] = "1.3.0" // some still below the minimum
	}
	signed := []string{"1.2.0", "1.3.0", "1.4.0", "1.4.2"}
	evil := &Doc{App: "hello", Releases: map[string]Entry{
		"1.2.0": {Channel: DefaultChannel, BasisPoints: Full, State: Active, Salt: salt1},
		"1.3.0": {Channel: DefaultChannel, BasisPoints: Full, State: Active, Salt: salt1},
		"1.4.0": {Channel: DefaultChannel, BasisPoints: Full, State: Pulled, Salt: salt1},
		"1.4.2": {Channel: DefaultChannel, BasisPoints: Full, State: Pulled, Salt: salt1},
	}}
	moved := f.check(t, signed, evil, "1.4.0")
	for id, c := range moved {
		if release.CompareVersions(c.Version, "1.4.0") < 0 {
			t.Fatalf("%s moved to %s, below the minimum 1.4.0: %+v", id, c.Version, c)
		}
	}
	if got := len(f.on("1.2.0")) + len(f.on("1.3.0")); got != n/4 {
		t.Fatalf("%d installations below the minimum, want the %d that were", got, n/4)
	}
	// The same document without a minimum does take them back: the bound is
	// what stops it.
	g := newFleet(n, "1.4.2")
	g.check(t, signed, evil, "")
	if len(g.on("1.3.0")) != n {
		t.Fatalf("without a minimum the pull went to %d on 1.3.0, want %d", len(g.on("1.3.0")), n)
	}
	checkRandomInputs(t, func(in Input, c Choice) error {
		if in.MinVersion != "" && c.Version != "" && release.CompareVersions(c.Version, in.MinVersion) < 0 {
			return fmt.Errorf("chose %s below the minimum %s", c.Version, in.MinVersion)
		}
		return nil
	})
}

// TestDowngradeOnlyThroughPull_R49: Choose returns an older version than
// the installed one only when a signed decision pulled the installed
// version, and then says so (Downgrade).
func TestDowngradeOnlyThroughPull_R49(t *testing.T) {
	signed := []string{"1.3.0", "1.4.0"}
	// Every decision short of a pull, with the older release at 100%: no
	// installation of 1.4.0 moves.
	for _, e := range []Entry{
		{Channel: DefaultChannel, BasisPoints: 0, State: Active, Salt: salt1},
		{Channel: DefaultChannel, BasisPoints: Full, State: Halted, Salt: salt1},
		{Channel: "beta", BasisPoints: Full, State: Active, Salt: salt1},
	} {
		f := newFleet(1000, "1.4.0")
		d := &Doc{App: "hello", Releases: map[string]Entry{"1.4.0": e, "1.3.0": {Channel: DefaultChannel, BasisPoints: Full, State: Active, Salt: salt1}}}
		if moved := f.check(t, signed, d, ""); len(moved) != 0 {
			t.Fatalf("with 1.4.0 %+v, %d installations moved to 1.3.0", e, len(moved))
		}
	}
	checkRandomInputs(t, func(in Input, c Choice) error {
		older := c.Version != "" && in.Installed != "" && release.CompareVersions(c.Version, in.Installed) < 0
		if older != c.Downgrade {
			return fmt.Errorf("choice %+v from %s: Downgrade is %v", c, in.Installed, c.Downgrade)
		}
		if c.Downgrade && in.Doc.entry(in.Installed).State != Pulled {
			return fmt.Errorf("downgrade from %s (%+v) to %s without a pull", in.Installed, in.Doc.entry(in.Installed), c.Version)
		}
		if c.Version != "" && c.Version == in.Installed {
			return fmt.Errorf("chose the installed version %s", c.Version)
		}
		return nil
	})
}

// TestChooseRules checks the rest of Choose's contract on random inputs: a
// chosen release is never pulled and is in the installation's channels,
// and, unless the installation is below the minimum, it is Active and the
// installation is in its cohort.
func TestChooseRules(t *testing.T) {
	checkRandomInputs(t, func(in Input, c Choice) error {
		if c.Version == "" {
			return nil
		}
		e := in.Doc.entry(c.Version)
		ch := in.Channel
		if ch == "" {
			ch = DefaultChannel
		}
		below := in.Installed != "" && in.MinVersion != "" && release.CompareVersions(in.Installed, in.MinVersion) < 0
		switch {
		case e.State == Pulled:
			return fmt.Errorf("chose pulled %s", c.Version)
		case e.Channel != ch && e.Channel != DefaultChannel:
			return fmt.Errorf("chose %s of channel %s for an installation on %s", c.Version, e.Channel, ch)
		case !below && (e.State != Active || Bucket(in.ID, e.Salt) >= e.BasisPoints):
			return fmt.Errorf("chose %s (%+v) for an installation not in its cohort (bucket %d)", c.Version, e, Bucket(in.ID, e.Salt))
		}
		return nil
	})
}

// checkRandomInputs runs Choose on 20,000 random inputs: random signed
// versions, random decisions about them and about unsigned ones, random
// minimums and installations; prop returns an error for a bad choice.
func checkRandomInputs(t *testing.T, prop func(Input, Choice) error) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 8))
	all := []string{"0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0-rc.1", "2.0.0", "9.9.9"}
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	ids := newIDs(64, 3)
	for i := range 20000 {
		in := Input{Doc: &Doc{App: "hello", Releases: map[string]Entry{}}}
		for _, v := range all[1:8] {
			if r.IntN(3) > 0 {
				in.Versions = append(in.Versions, v)
			}
		}
		for _, v := range all {
			if r.IntN(3) > 0 {
				in.Doc.Releases[v] = Entry{Channel: pick([]string{"stable", "beta", "canary"}),
					BasisPoints: []int{0, 1, 500, 5000, 9999, Full}[r.IntN(6)],
					State:       []State{Active, Halted, Pulled}[r.IntN(3)], Salt: pick(ids)}
			}
		}
		in.MinVersion = pick([]string{"", "", "1.2.0", "1.4.0", "2.0.0"})
		in.Installation = Installation{ID: pick(ids), Channel: pick([]string{"", "stable", "beta"}), Installed: pick(append([]string{""}, all...))}
		if i%5 == 0 {
			in.Doc = nil
		}
		c := Choose(in)
		if err := prop(in, c); err != nil {
			t.Fatalf("input %d %+v (doc %+v): %v", i, in, in.Doc, err)
		}
	}
}
