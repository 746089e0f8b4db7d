package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

// A remote publisher signs on top of the role the server hands it
// (SignRelease, SignPolicy, ResignRole). A stolen server could hand it an
// old role, validly signed by the application key, whose minimum safe
// version is lower than the one the publisher signed since: the publisher
// would then sign a newer role with the old, lower minimum, and the
// server's rollout key could take new installations back to a release
// with a known hole (review F0, R63). The publisher therefore keeps a
// record of the last role it signed and the server accepted, and
// SignOptions.Last refuses a current role older than it, a different role
// of the same version, and a lower minimum than it that the application
// key did not sign as deliberately lowered (rollout.Policy.LoweredFrom).

var (
	// ErrOlderRole means the role the server serves is older than the one
	// this publisher's record says it signed last, or not that role.
	ErrOlderRole = errors.New("the server's role is older than the one this publisher signed last")
	// ErrLowerMin means a minimum safe version would go down without the
	// explicit choice to lower it (MinVersionOptions.Lower,
	// SignOptions.LowerMin; ferry release min-version --lower-min).
	ErrLowerMin = errors.New("the minimum safe version would go down")
)

// PublisherRecord is what a remote publisher remembers of the last role of
// an application that it signed and the server accepted: its version, its
// sha256 and its minimum safe version. It is written as a small JSON file
// (WritePublisherRecord) beside the publisher's other state.
type PublisherRecord struct {
	App         string `json:"app"`
	RoleVersion int64  `json:"role_version"`
	RoleSHA256  string `json:"role_sha256"`
	MinVersion  string `json:"min_version"` // "" when the role signs none
}

// RecordOf returns the record of role, signed metadata of app's role.
func RecordOf(app string, role []byte) (*PublisherRecord, error) {
	md, err := metadata.Targets().FromBytes(role)
	if err != nil {
		return nil, fmt.Errorf("record of %s's role: %w", app, err)
	}
	p, err := policyOf(md, app)
	if err != nil {
		return nil, fmt.Errorf("record of %s's role: %w", app, err)
	}
	sum := sha256.Sum256(role)
	return &PublisherRecord{App: app, RoleVersion: md.Signed.Version, RoleSHA256: hex.EncodeToString(sum[:]), MinVersion: p.MinVersion}, nil
}

// ReadPublisherRecord reads the record of app in file: nil, nil when the
// file does not exist (a publisher that never signed for app here). A
// damaged record is an error, never a reset.
func ReadPublisherRecord(file, app string) (*PublisherRecord, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("publisher record: %w", err)
	}
	var r PublisherRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("publisher record %s is damaged (%v): restore it, or remove it to trust the server's role as it is", file, err)
	}
	if err := r.check(app); err != nil {
		return nil, fmt.Errorf("publisher record %s is damaged (%v): restore it, or remove it to trust the server's role as it is", file, err)
	}
	return &r, nil
}

func (r *PublisherRecord) check(app string) error {
	if r.App != app {
		return fmt.Errorf("it is for application %q, not %q", r.App, app)
	}
	if r.RoleVersion < 1 {
		return fmt.Errorf("role version %d", r.RoleVersion)
	}
	if s, err := hex.DecodeString(r.RoleSHA256); err != nil || len(s) != sha256.Size {
		return errors.New("role_sha256 is not 64 hex digits")
	}
	if r.MinVersion != "" {
		if err := release.ValidVersion(r.MinVersion); err != nil {
			return fmt.Errorf("min_version: %w", err)
		}
	}
	return nil
}

// WritePublisherRecord writes r to file atomically (0600, its directory
// made 0700 if missing).
func WritePublisherRecord(file string, r *PublisherRecord) error {
	if err := r.check(r.App); err != nil {
		return fmt.Errorf("publisher record: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("publisher record: %w", err)
	}
	if err := atomicfile.WriteFile(file, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("publisher record: %w", err)
	}
	return nil
}

// checkCurrent checks the role the server serves now (md, raw; md nil and
// raw empty when it serves none) against the publisher's record last.
func checkCurrent(last *PublisherRecord, app string, md *targetsMD, raw []byte) error {
	if last == nil {
		return nil
	}
	if len(raw) == 0 {
		return fmt.Errorf("the server serves no role of %s, but this publisher signed its version %d: %w; refusing to sign a new one",
			app, last.RoleVersion, ErrOlderRole)
	}
	v := md.Signed.Version
	switch sum := sha256.Sum256(raw); {
	case v < last.RoleVersion:
		return fmt.Errorf("the server's role of %s is version %d, but this publisher signed version %d: %w (a server replaying an old role); refusing to sign on top of it",
			app, v, last.RoleVersion, ErrOlderRole)
	case v == last.RoleVersion && hex.EncodeToString(sum[:]) != last.RoleSHA256:
		return fmt.Errorf("the server's role of %s version %d is not the one this publisher signed: %w; refusing to sign on top of it",
			app, v, ErrOlderRole)
	}
	if last.MinVersion == "" {
		return nil
	}
	p, err := policyOf(md, app)
	if err != nil {
		return err
	}
	if p.MinVersion != "" && release.CompareVersions(p.MinVersion, last.MinVersion) >= 0 || p.LoweredFrom != "" {
		return nil // as high, or lowered deliberately by a newer role
	}
	now := p.MinVersion
	if now == "" {
		now = "none"
	}
	return fmt.Errorf("the server's role of %s (version %d) has minimum safe version %s, below %s that this publisher signed, and does not sign it as lowered: %w (%w); refusing to sign on top of it",
		app, v, now, last.MinVersion, ErrLowerMin, ErrOlderRole)
}

// policyOf returns the policy app's role md signs; a zero Policy when it
// signs none.
func policyOf(md *targetsMD, app string) (rollout.Policy, error) {
	t := md.Signed.Targets[rollout.PolicyPath(app)]
	if t == nil {
		return rollout.Policy{}, nil
	}
	if t.Custom == nil {
		return rollout.Policy{}, fmt.Errorf("target %s has no custom metadata", rollout.PolicyPath(app))
	}
	return rollout.ParsePolicy(app, *t.Custom)
}
