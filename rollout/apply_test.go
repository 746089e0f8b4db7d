package rollout

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestApplyTransitions(t *testing.T) {
	signed := []string{"1.3.0", "1.4.0", "1.4.2"}
	d := &Doc{App: "hello"}
	step := func(a Action, want Entry) Entry {
		t.Helper()
		e, err := d.Apply(a, signed, "1.4.0")
		if err != nil {
			t.Fatalf("Apply(%+v): %v", a, err)
		}
		if want.Salt == "" {
			want.Salt = e.Salt
		}
		if e != want || d.Releases[a.Version] != e {
			t.Fatalf("Apply(%+v) = %+v (doc %+v), want %+v", a, e, d.Releases[a.Version], want)
		}
		return e
	}
	e := step(Action{Kind: Start, Version: "1.4.2", BasisPoints: 500, Channel: "beta"}, Entry{Channel: "beta", BasisPoints: 500, State: Active})
	if !validSalt(e.Salt) {
		t.Fatalf("new entry's salt %q", e.Salt)
	}
	salt := e.Salt
	step(Action{Kind: Start, Version: "1.4.2", BasisPoints: 5000}, Entry{Channel: "beta", BasisPoints: 5000, State: Active, Salt: salt})
	step(Action{Kind: Halt, Version: "1.4.2", BasisPoints: 9999}, Entry{Channel: "beta", BasisPoints: 5000, State: Halted, Salt: salt})
	step(Action{Kind: Halt, Version: "1.4.2"}, Entry{Channel: "beta", BasisPoints: 5000, State: Halted, Salt: salt})
	step(Action{Kind: Resume, Version: "1.4.2"}, Entry{Channel: "beta", BasisPoints: 5000, State: Active, Salt: salt})
	step(Action{Kind: Promote, Version: "1.4.2", Channel: "stable"}, Entry{Channel: "stable", BasisPoints: 5000, State: Active, Salt: salt})
	step(Action{Kind: Pull, Version: "1.4.2"}, Entry{Channel: "stable", BasisPoints: 5000, State: Pulled, Salt: salt})
	for _, k := range []string{Halt, Resume} {
		if _, err := d.Apply(Action{Kind: k, Version: "1.4.2"}, signed, "1.4.0"); err == nil || !strings.Contains(err.Error(), "pulled") {
			t.Errorf("%s of a pulled release = %v", k, err)
		}
	}
	step(Action{Kind: Start, Version: "1.4.2", BasisPoints: 100}, Entry{Channel: "stable", BasisPoints: 100, State: Active, Salt: salt})
	// The first action on a release no decision names starts from the
	// default (stable, active, full), with its own salt.
	e = step(Action{Kind: Pull, Version: "1.4.0"}, Entry{Channel: DefaultChannel, BasisPoints: Full, State: Pulled})
	if e.Salt == salt {
		t.Error("two releases got the same salt")
	}
	if got, err := ParseDoc("hello", mustMarshal(t, d)); err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("the applied doc does not round-trip: %+v, %v", got, err)
	}
}

func TestApplyRefuses(t *testing.T) {
	signed := []string{"1.3.0", "1.4.0", "1.4.2"}
	cases := []struct {
		a    Action
		want string
	}{
		{Action{Kind: Start, Version: "1.5.0", BasisPoints: 500}, "signed no release 1.5.0"},               // R61
		{Action{Kind: Promote, Version: "9.9.9", Channel: "stable"}, "signed no release"},                  // R61
		{Action{Kind: Start, Version: "1.3.0", BasisPoints: Full}, "below the minimum safe version 1.4.0"}, // R63
		{Action{Kind: Resume, Version: "1.3.0"}, "below the minimum"},
		{Action{Kind: Start, Version: "1.4.2", BasisPoints: Full + 1}, "want 0..10000"},
		{Action{Kind: Start, Version: "1.4.2", BasisPoints: -5}, "want 0..10000"},
		{Action{Kind: Start, Version: "1.4.2", BasisPoints: 5, Channel: "Beta"}, "invalid channel"},
		{Action{Kind: Promote, Version: "1.4.2"}, "needs the channel"},
		{Action{Kind: Promote, Version: "1.4.2", Channel: "x y"}, "invalid channel"},
		{Action{Kind: "widen", Version: "1.4.2"}, "unknown action"},
		{Action{Kind: Start, Version: "v1.4.2"}, "leading v"},
	}
	for _, c := range cases {
		d := &Doc{App: "hello", Releases: map[string]Entry{"1.4.2": {Channel: "beta", BasisPoints: 500, State: Active, Salt: salt1}}}
		before := mustMarshal(t, d)
		if e, err := d.Apply(c.a, signed, "1.4.0"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Apply(%+v) = %+v, %v; want an error containing %q", c.a, e, err, c.want)
		}
		if after := mustMarshal(t, d); string(after) != string(before) {
			t.Errorf("Apply(%+v) failed but changed the doc: %s", c.a, after)
		}
	}
	// Without a minimum, an old signed release can be started.
	d := &Doc{App: "hello"}
	if _, err := d.Apply(Action{Kind: Start, Version: "1.3.0", BasisPoints: 1}, signed, ""); err != nil {
		t.Errorf("Apply without a minimum: %v", err)
	}
}

func mustMarshal(t *testing.T, d *Doc) []byte {
	t.Helper()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewSalt(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := NewSalt()
		if !validSalt(s) || seen[s] {
			t.Fatalf("NewSalt = %q (seen before: %v)", s, seen[s])
		}
		seen[s] = true
	}
}

func TestParsePercent(t *testing.T) {
	good := map[string]int{"0": 0, "5": 500, "0.5": 50, "0.05": 5, "12.25": 1225, "50": 5000, "100": Full, "100.00": Full, "5%": 500, "007": 700}
	for in, want := range good {
		if bp, err := ParsePercent(in); err != nil || bp != want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", in, bp, err, want)
		}
	}
	for _, in := range []string{"", "%", "-5", "+5", "100.01", "101", "1000", "0.001", "5.", ".5", "5,5", "5 ", " 5", "five", "1e2", "5%%", "0x10", "٥"} {
		if bp, err := ParsePercent(in); err == nil || !strings.Contains(err.Error(), "invalid percent") {
			t.Errorf("ParsePercent(%q) = %d, %v", in, bp, err)
		}
	}
	for bp := 0; bp <= Full; bp++ {
		s := strings.TrimSuffix(Percent(bp), "%")
		if got, err := ParsePercent(s); err != nil || got != bp {
			t.Fatalf("ParsePercent(Percent(%d) = %q) = %d, %v", bp, s, got, err)
		}
	}
}

// TestPrune (F6): an entry equal to the default and an entry of a version
// the application key no longer signs go, unless it is pulled (installations
// that run a pulled version move off it, signed or not); every other entry,
// below the minimum too, stays.
func TestPrune(t *testing.T) {
	salt := NewSalt()
	e := func(ch string, bp int, st State) Entry {
		return Entry{Channel: ch, BasisPoints: bp, State: st, Salt: salt}
	}
	d := &Doc{App: "hello", Releases: map[string]Entry{
		"1.0.0": e(DefaultChannel, Full, Active), // default: goes
		"1.1.0": e(DefaultChannel, Full, Halted), // halted: stays
		"1.2.0": e("beta", Full, Active),         // another channel: stays
		"1.3.0": e(DefaultChannel, 9999, Active), // not everyone: stays
		"0.9.0": e(DefaultChannel, Full, Pulled), // unsigned, pulled: stays
		"0.8.0": e(DefaultChannel, 500, Halted),  // unsigned, not pulled: goes
		"2.0.0": e(DefaultChannel, Full, Active), // unsigned and default: goes
		"1.4.0": e(DefaultChannel, 5000, Pulled), // pulled: stays
	}}
	gone := d.Prune([]string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"})
	if want := []string{"0.8.0", "1.0.0", "2.0.0"}; !slices.Equal(gone, want) {
		t.Errorf("Prune removed %v, want %v", gone, want)
	}
	for _, v := range []string{"1.1.0", "1.2.0", "1.3.0", "0.9.0", "1.4.0"} {
		if _, ok := d.Releases[v]; !ok {
			t.Errorf("Prune removed %s, which decides something", v)
		}
	}
	if len(d.Releases) != 5 {
		t.Errorf("%d entries left, want 5", len(d.Releases))
	}
	// What is pruned decides nothing: every choice is the same with and
	// without it.
	full := &Doc{App: "hello", Releases: map[string]Entry{"1.0.0": e(DefaultChannel, Full, Active)}}
	for _, id := range []string{"a", "b", "c", "d"} {
		for _, installed := range []string{"", "0.9.0", "1.0.0"} {
			in := Input{Versions: []string{"1.0.0"}, Installation: Installation{ID: id, Installed: installed}}
			in.Doc = full
			with := Choose(in)
			in.Doc = &Doc{App: "hello"}
			if without := Choose(in); with != without {
				t.Errorf("install %s at %q: %+v with the default entry, %+v without", id, installed, with, without)
			}
		}
	}
}
