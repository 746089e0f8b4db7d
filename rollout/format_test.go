package rollout

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const salt1 = "0123456789abcdef0123456789abcdef"

func exampleDoc() *Doc {
	return &Doc{App: "hello", Releases: map[string]Entry{
		"1.4.2":      {Channel: "beta", BasisPoints: 500, State: Active, Salt: salt1},
		"1.4.1":      {Channel: "stable", BasisPoints: Full, State: Pulled, Salt: "fedcba9876543210fedcba9876543210"},
		"2.0.0-rc.1": {Channel: "canary-eu", BasisPoints: 0, State: Halted, Salt: "00000000000000000000000000000000"},
	}}
}

func TestDocRoundTrip(t *testing.T) {
	d := exampleDoc()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ferry-rollout":{"app":"hello","releases":{` +
		`"1.4.1":{"basis_points":10000,"channel":"stable","salt":"fedcba9876543210fedcba9876543210","state":"pulled"},` +
		`"1.4.2":{"basis_points":500,"channel":"beta","salt":"0123456789abcdef0123456789abcdef","state":"active"},` +
		`"2.0.0-rc.1":{"basis_points":0,"channel":"canary-eu","salt":"00000000000000000000000000000000","state":"halted"}}}}`
	if string(b) != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", b, want)
	}
	assertCanonical(t, b)
	got, err := ParseDoc("hello", b)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("ParseDoc(Marshal) = %+v, %v", got, err)
	}
	// Other members of the custom field are ignored; spaces are fine.
	spaced := `{ "other": [1, 2.5], "ferry-rollout": {"releases": {}, "app": "hello"} }`
	if got, err := ParseDoc("hello", []byte(spaced)); err != nil || got.App != "hello" || got.Releases == nil || len(got.Releases) != 0 {
		t.Fatalf("ParseDoc(%s) = %+v, %v", spaced, got, err)
	}
	// An empty document marshals with an empty releases object.
	if b, err := (&Doc{App: "hello"}).Marshal(); err != nil || string(b) != `{"ferry-rollout":{"app":"hello","releases":{}}}` {
		t.Fatalf("Marshal of an empty Doc = %s, %v", b, err)
	}
}

// assertCanonical checks that b is canonical JSON: what encoding/json writes
// for the same value decoded generically (sorted keys, no spaces).
func assertCanonical(t *testing.T, b []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	c, _ := json.Marshal(v)
	if string(c) != string(b) {
		t.Fatalf("not canonical:\n%s\ncanonical:\n%s", b, c)
	}
}

func TestParseDocRefuses(t *testing.T) {
	entry := `{"channel":"beta","basis_points":500,"state":"active","salt":"` + salt1 + `"}`
	doc := func(releases string) string { return `{"ferry-rollout":{"app":"hello","releases":{` + releases + `}}}` }
	one := func(e string) string { return doc(`"1.4.2":` + e) }
	with := func(old, new string) string { return one(strings.Replace(entry, old, new, 1)) }
	bad := map[string]string{
		"":                                  "not a JSON object",
		"null":                              "not a JSON object",
		`{"ferry":{}}`:                      `no "ferry-rollout"`,
		`{"ferry-rollout":null}`:            "not a JSON object",
		`{"ferry-rollout":{"app":"hello"}}`: `no member "releases"`,
		`{"ferry-rollout":{"releases":{}}}`: `no member "app"`,
		`{"ferry-rollout":{"app":"hello","releases":{},"extra":1}}`:          `unknown member "extra"`,
		`{"ferry-rollout":{"app":"hello","releases":{},"App":"x"}}`:          `unknown member "App"`,
		`{"ferry-rollout":{"app":"hello","app":"hello","releases":{}}}`:      "twice",
		`{"ferry-rollout":{"app":"hello","releases":{}},"ferry-rollout":{}}`: "twice",
		`{"ferry-rollout":{"app":"other","releases":{}}}`:                    `the document is for "other"`,
		`{"ferry-rollout":{"app":1,"releases":{}}}`:                          "app: not a string",
		`{"ferry-rollout":{"app":"hello","releases":null}}`:                  "releases: not a JSON object",
		`{"ferry-rollout":{"app":"hello","releases":[]}}`:                    "releases: not a JSON object",
		doc(`"1.4.2":` + entry + `,"1.4.2":` + entry):                        "twice",
		doc(`"v1.4.2":` + entry):                                             "leading v",
		doc(`"1.4.2+b":` + entry):                                            "+build",
		one(`null`):                                                          "not a JSON object",
		with(`"channel":"beta",`, ""):                                        "channel: missing",
		with(`"basis_points":500,`, ""):                                      "basis_points: missing",
		with(`,"salt":"`+salt1+`"`, ""):                                      "salt: missing",
		with(`"state":"active",`, ""):                                        "state: missing",
		with(`"channel":"beta"`, `"channel":"Beta"`):                         "invalid channel",
		with(`"channel":"beta"`, `"channel":null`):                           "channel: missing or not a string",
		with(`"channel":"beta"`, `"channel":"beta","Channel":"x"`):           `unknown member "Channel"`,
		with(`"channel":"beta"`, `"channel":"beta","channel":"x"`):           "twice",
		with(`500`, `500.0`):                                                 "not an integer",
		with(`500`, `5e2`):                                                   "not an integer",
		with(`500`, `-1`):                                                    "not an integer",
		with(`500`, `10001`):                                                 "not an integer",
		with(`500`, `"500"`):                                                 "not an integer",
		with(`500`, `null`):                                                  "not an integer",
		with(`"active"`, `"Active"`):                                         "not one of active, halted, pulled",
		with(`"active"`, `"paused"`):                                         "not one of",
		with(salt1, strings.ToUpper(salt1)):                                  "salt",
		with(salt1, salt1[:31]):                                              "salt",
		with(salt1, ""):                                                      "salt",
		one(entry) + " {}":                                                   "after",
		`{"ferry-rollout":{"app":"hello","releases":{}},"pad":"` + strings.Repeat("x", MaxDocLength) + `"}`: "more than 65536",
	}
	for in, want := range bad {
		if d, err := ParseDoc("hello", []byte(in)); err == nil || !strings.Contains(err.Error(), want) || d != nil {
			t.Errorf("ParseDoc(%.90s) = %+v, %v; want an error containing %q", in, d, err, want)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseDoc error on two lines: %q", err)
		}
	}
	if _, err := ParseDoc("Hello", []byte(`{"ferry-rollout":{"app":"Hello","releases":{}}}`)); err == nil {
		t.Error("ParseDoc accepted an invalid app name")
	}
}

func TestDocMarshalRefuses(t *testing.T) {
	for _, d := range []*Doc{
		{App: "Hello"},
		{App: "hello", Releases: map[string]Entry{"v1.0.0": {Channel: "stable", State: Active, Salt: salt1}}},
		{App: "hello", Releases: map[string]Entry{"1.0.0": {Channel: "", State: Active, Salt: salt1}}},
		{App: "hello", Releases: map[string]Entry{"1.0.0": {Channel: "stable", State: Active, Salt: ""}}},
		{App: "hello", Releases: map[string]Entry{"1.0.0": {Channel: "stable", State: "x", Salt: salt1}}},
		{App: "hello", Releases: map[string]Entry{"1.0.0": {Channel: "stable", BasisPoints: Full + 1, State: Active, Salt: salt1}}},
		{App: "hello", Releases: map[string]Entry{"1.0.0": {Channel: "stable", BasisPoints: -1, State: Active, Salt: salt1}}},
	} {
		if b, err := d.Marshal(); err == nil {
			t.Errorf("Marshal(%+v) = %s", d, b)
		}
	}
	// A document over the bound is refused by Marshal too.
	big := &Doc{App: "hello", Releases: map[string]Entry{}}
	for i := 0; len(big.Releases) < 1000; i++ {
		big.Releases["1.0."+strconv.Itoa(i)] = Entry{Channel: "stable", BasisPoints: Full, State: Active, Salt: salt1}
	}
	if _, err := big.Marshal(); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Marshal of %d releases = %v", len(big.Releases), err)
	}
}

func TestPolicy(t *testing.T) {
	p := Policy{App: "hello", MinVersion: "1.4.0"}
	b, err := p.Marshal()
	if err != nil || string(b) != `{"ferry-policy":{"app":"hello","min_version":"1.4.0"}}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	assertCanonical(t, b)
	if got, err := ParsePolicy("hello", b); err != nil || got != p {
		t.Fatalf("ParsePolicy(Marshal) = %+v, %v", got, err)
	}
	if PolicyPath("hello") != "hello/_/_/policy" {
		t.Errorf("PolicyPath = %s", PolicyPath("hello"))
	}
	bad := map[string]string{
		`{"ferry-policy":{"app":"hello"}}`:                                             `no member "min_version"`,
		`{"ferry-policy":{"min_version":"1.4.0"}}`:                                     `no member "app"`,
		`{"ferry-policy":{"app":"other","min_version":"1.4.0"}}`:                       `for "other"`,
		`{"ferry-policy":{"app":"hello","min_version":"1.4"}}`:                         "invalid version",
		`{"ferry-policy":{"app":"hello","min_version":""}}`:                            "invalid version",
		`{"ferry-policy":{"app":"hello","min_version":null}}`:                          "not a string",
		`{"ferry-policy":{"app":"hello","min_version":"1.4.0","extra":true}}`:          `unknown member "extra"`,
		`{"ferry-policy":{"app":"hello","min_version":"1.4.0","min_version":"0.0.1"}}`: "twice",
		`{"ferry-rollout":{"app":"hello","min_version":"1.4.0"}}`:                      `no "ferry-policy"`,
		`{"ferry-policy":{"app":"hello","min_version":"1.4.0"}}x`:                      "after",
	}
	for in, want := range bad {
		if p, err := ParsePolicy("hello", []byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePolicy(%s) = %+v, %v; want an error containing %q", in, p, err, want)
		}
	}
	if _, err := (Policy{App: "hello", MinVersion: "v1"}).Marshal(); err == nil {
		t.Error("Marshal of a bad policy succeeded")
	}
}

// TestPolicyLowered: a policy that lowers the minimum on purpose signs the
// minimum it lowers in "ferry-policy-lowered", beside "ferry-policy";
// "from" must be a version above the minimum, and nothing else.
func TestPolicyLowered(t *testing.T) {
	p := Policy{App: "hello", MinVersion: "1.3.0", LoweredFrom: "1.4.0"}
	b, err := p.Marshal()
	if err != nil || string(b) != `{"ferry-policy":{"app":"hello","min_version":"1.3.0"},"ferry-policy-lowered":{"from":"1.4.0"}}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	assertCanonical(t, b)
	if got, err := ParsePolicy("hello", b); err != nil || got != p {
		t.Fatalf("ParsePolicy(Marshal) = %+v, %v", got, err)
	}
	const pol = `{"ferry-policy":{"app":"hello","min_version":"1.3.0"},`
	bad := map[string]string{
		pol + `"ferry-policy-lowered":{"from":"1.3.0"}}`:                "not above",
		pol + `"ferry-policy-lowered":{"from":"1.2.0"}}`:                "not above",
		pol + `"ferry-policy-lowered":{"from":"1.4"}}`:                  "invalid version",
		pol + `"ferry-policy-lowered":{"from":""}}`:                     "empty",
		pol + `"ferry-policy-lowered":{"from":null}}`:                   "not a string",
		pol + `"ferry-policy-lowered":{}}`:                              `no member "from"`,
		pol + `"ferry-policy-lowered":{"from":"1.4.0","by":"x"}}`:       `unknown member "by"`,
		pol + `"ferry-policy-lowered":"1.4.0"}`:                         "not a JSON object",
		pol + `"ferry-policy-lowered":{"from":"1.4.0","from":"2.0.0"}}`: "twice",
	}
	for in, want := range bad {
		if p, err := ParsePolicy("hello", []byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePolicy(%s) = %+v, %v; want an error containing %q", in, p, err, want)
		}
	}
	if _, err := (Policy{App: "hello", MinVersion: "1.4.0", LoweredFrom: "1.4.0"}).Marshal(); err == nil {
		t.Error("Marshal of a lowering to the same version succeeded")
	}
}
