package rollout

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ferry-updates/ferry/internal/strictjson"
	"github.com/ferry-updates/ferry/release"
)

// MaxDocLength bounds the signed custom metadata of a decision document
// and of a policy (bytes).
const MaxDocLength = 65536

// Member names of the custom metadata of the two targets.
const (
	docMember     = "ferry-rollout"
	policyMember  = "ferry-policy"
	loweredMember = "ferry-policy-lowered"
)

// Check reports whether every field of e is valid: a valid channel, a
// share of 0 to Full basis points, one of the three states, and a salt of
// 32 lower-case hex digits.
func (e Entry) Check() error {
	if err := release.ValidChannel(e.Channel); err != nil {
		return fmt.Errorf("channel: %w", err)
	}
	if e.BasisPoints < 0 || e.BasisPoints > Full {
		return fmt.Errorf("basis_points: %d is not an integer 0..%d", e.BasisPoints, Full)
	}
	switch e.State {
	case Active, Halted, Pulled:
	default:
		return fmt.Errorf("state: %.20q is not one of active, halted, pulled", e.State)
	}
	if !validSalt(e.Salt) {
		return fmt.Errorf("salt: %.40q is not 32 lower-case hex digits", e.Salt)
	}
	return nil
}

// check reports whether d is a valid document of an application.
func (d *Doc) check() error {
	if err := release.ValidApp(d.App); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	for v, e := range d.Releases {
		if err := release.ValidVersion(v); err != nil {
			return fmt.Errorf("releases: %w", err)
		}
		if err := e.Check(); err != nil {
			return fmt.Errorf("release %s: %w", v, err)
		}
	}
	return nil
}

// ParseDoc parses and checks the signed custom metadata of the target
// DocPath(app): at most MaxDocLength bytes of one JSON object whose member
// "ferry-rollout" is {"app": APP, "releases": {VERSION: ENTRY, ...}} with
// ENTRY {"channel", "basis_points", "state", "salt"}. Every member is
// required, no other member is allowed inside "ferry-rollout", names match
// exactly, a member twice is refused, basis_points is an integer (no
// floats), and "app" must be app. Members outside "ferry-rollout" are
// ignored.
func ParseDoc(app string, custom []byte) (*Doc, error) {
	d, err := parseDoc(app, custom)
	if err != nil {
		return nil, fmt.Errorf("rollout decisions of %.70q: %w", app, err)
	}
	return d, nil
}

func parseDoc(app string, custom []byte) (*Doc, error) {
	m, err := member(custom, docMember, "app", "releases")
	if err != nil {
		return nil, err
	}
	d := &Doc{Releases: map[string]Entry{}}
	if d.App, err = strictjson.String(m["app"]); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if d.App != app {
		return nil, fmt.Errorf("app: the document is for %.70q", d.App)
	}
	rels, err := strictjson.Object(m["releases"])
	if err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	for v, raw := range rels {
		if err := release.ValidVersion(v); err != nil {
			return nil, fmt.Errorf("releases: %w", err)
		}
		if d.Releases[v], err = parseEntry(raw); err != nil {
			return nil, fmt.Errorf("release %s: %w", v, err)
		}
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

// member returns the members of the object custom[name], after checking
// the size bound, that it has exactly the members names (all required).
func member(custom []byte, name string, names ...string) (map[string]json.RawMessage, error) {
	if len(custom) > MaxDocLength {
		return nil, fmt.Errorf("%d bytes, more than %d", len(custom), MaxDocLength)
	}
	top, err := strictjson.Object(custom)
	if err != nil {
		return nil, err
	}
	raw, ok := top[name]
	if !ok {
		return nil, fmt.Errorf("no %q object", name)
	}
	m, err := strictjson.Object(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := strictjson.Only(m, names...); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return nil, fmt.Errorf("%s: no member %q", name, n)
		}
	}
	return m, nil
}

// parseEntry parses one decision; the caller checks it.
func parseEntry(raw json.RawMessage) (Entry, error) {
	m, err := strictjson.Object(raw)
	if err != nil {
		return Entry{}, err
	}
	if err := strictjson.Only(m, "channel", "basis_points", "state", "salt"); err != nil {
		return Entry{}, err
	}
	var e Entry
	var state string
	for _, f := range []struct {
		name string
		v    *string
	}{{"channel", &e.Channel}, {"state", &state}, {"salt", &e.Salt}} {
		if *f.v, err = strictjson.String(m[f.name]); err != nil {
			return Entry{}, fmt.Errorf("%s: missing or %w", f.name, err)
		}
	}
	e.State = State(state)
	if _, ok := m["basis_points"]; !ok {
		return Entry{}, errors.New("basis_points: missing")
	}
	if e.BasisPoints, err = strictjson.Uint(m["basis_points"], Full); err != nil {
		return Entry{}, fmt.Errorf("basis_points: %w", err)
	}
	return e, nil
}

// The wire forms list members in sorted order, so that Marshal writes
// canonical JSON (sorted keys, no spaces, integers only).
type (
	wireEntry struct {
		BasisPoints int    `json:"basis_points"`
		Channel     string `json:"channel"`
		Salt        string `json:"salt"`
		State       State  `json:"state"`
	}
	wireDoc struct {
		App      string               `json:"app"`
		Releases map[string]wireEntry `json:"releases"`
	}
)

// Marshal returns d as the custom metadata of the target DocPath(d.App),
// {"ferry-rollout":{"app":..,"releases":{..}}}, in canonical JSON (sorted
// member names, no spaces), after checking it. ParseDoc(d.App, b) returns
// a Doc equal to d.
func (d *Doc) Marshal() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("rollout decisions of %.70q: %w", d.App, err)
	}
	w := wireDoc{App: d.App, Releases: make(map[string]wireEntry, len(d.Releases))}
	for v, e := range d.Releases {
		w.Releases[v] = wireEntry{BasisPoints: e.BasisPoints, Channel: e.Channel, Salt: e.Salt, State: e.State}
	}
	b, err := json.Marshal(map[string]wireDoc{docMember: w})
	if err != nil {
		return nil, err
	}
	if len(b) > MaxDocLength {
		return nil, fmt.Errorf("rollout decisions of %s: %d bytes, more than %d", d.App, len(b), MaxDocLength)
	}
	return b, nil
}

// PolicyPath is the target path whose signed custom metadata is app's
// Policy, "APP/_/_/policy". It matches the application role's pattern
// APP/*/*/* and no other role's, so only the application key signs it; it
// is not a release path ("_" is not a version), and clients skip it when
// listing releases.
func PolicyPath(app string) string { return app + "/_/_/policy" }

// Policy is what an application's own role (offline key) signs about its
// rollouts: the minimum safe version. No rollout decision can offer or
// move an installation below it, and installations below it get the
// newest release at or above it whatever the rollout says (R63).
type Policy struct {
	App        string `json:"app"`
	MinVersion string `json:"min_version"` // release.ValidVersion
	// LoweredFrom, when set, is the minimum this policy deliberately
	// lowers (ferry release min-version --lower-min): a version above
	// MinVersion. It is signed in its own top-level member,
	// "ferry-policy-lowered": {"from": VERSION}, beside "ferry-policy", so
	// that readers which know only "ferry-policy" still read the policy.
	// A server takes a role whose minimum is lower than the published one
	// only when LoweredFrom names the published one (F0): a pipeline fed
	// an old role by a stolen server never signs a lower minimum by itself.
	LoweredFrom string `json:"-"`
}

func (p Policy) check() error {
	if err := release.ValidApp(p.App); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if err := release.ValidVersion(p.MinVersion); err != nil {
		return fmt.Errorf("min_version: %w", err)
	}
	if p.LoweredFrom != "" {
		if err := release.ValidVersion(p.LoweredFrom); err != nil {
			return fmt.Errorf("%s from: %w", loweredMember, err)
		}
		if release.CompareVersions(p.LoweredFrom, p.MinVersion) <= 0 {
			return fmt.Errorf("%s from: %s is not above min_version %s", loweredMember, p.LoweredFrom, p.MinVersion)
		}
	}
	return nil
}

// ParsePolicy parses and checks the signed custom metadata of the target
// PolicyPath(app): at most MaxDocLength bytes of one JSON object whose
// member "ferry-policy" is {"app": APP, "min_version": VERSION}, both
// required, no other member, strict as ParseDoc; "app" must be app. An
// optional member "ferry-policy-lowered" is {"from": VERSION} (only), a
// version above the minimum (Policy.LoweredFrom).
func ParsePolicy(app string, custom []byte) (Policy, error) {
	p, err := parsePolicy(app, custom)
	if err != nil {
		return Policy{}, fmt.Errorf("rollout policy of %.70q: %w", app, err)
	}
	return p, nil
}

func parsePolicy(app string, custom []byte) (Policy, error) {
	m, err := member(custom, policyMember, "app", "min_version")
	if err != nil {
		return Policy{}, err
	}
	var p Policy
	if p.App, err = strictjson.String(m["app"]); err != nil {
		return Policy{}, fmt.Errorf("app: %w", err)
	}
	if p.App != app {
		return Policy{}, fmt.Errorf("app: the policy is for %.70q", p.App)
	}
	if p.MinVersion, err = strictjson.String(m["min_version"]); err != nil {
		return Policy{}, fmt.Errorf("min_version: %w", err)
	}
	if p.LoweredFrom, err = parseLowered(custom); err != nil {
		return Policy{}, err
	}
	if err := p.check(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// parseLowered returns the "from" of the policy's "ferry-policy-lowered"
// member, "" when it has none.
func parseLowered(custom []byte) (string, error) {
	top, err := strictjson.Object(custom)
	if err != nil {
		return "", err
	}
	if _, ok := top[loweredMember]; !ok {
		return "", nil
	}
	m, err := member(custom, loweredMember, "from")
	if err != nil {
		return "", err
	}
	from, err := strictjson.String(m["from"])
	if err != nil {
		return "", fmt.Errorf("%s from: %w", loweredMember, err)
	}
	if from == "" {
		return "", fmt.Errorf("%s from: empty", loweredMember)
	}
	return from, nil
}

// Marshal returns p as the custom metadata of the target PolicyPath(p.App),
// {"ferry-policy":{"app":..,"min_version":..}} (and, with LoweredFrom,
// "ferry-policy-lowered":{"from":..}), canonical JSON, after checking it.
func (p Policy) Marshal() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("rollout policy of %.70q: %w", p.App, err)
	}
	out := map[string]any{policyMember: p}
	if p.LoweredFrom != "" {
		out[loweredMember] = map[string]string{"from": p.LoweredFrom}
	}
	return json.Marshal(out)
}

// validSalt reports whether s is 32 lower-case hex digits.
func validSalt(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
