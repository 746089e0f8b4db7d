package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/faultfs"
	"github.com/ferry-updates/ferry/release"
)

// stateFormat names the state file format; a file with another format is
// treated as corrupt.
const stateFormat = "ferry-install-state/v1"

// maxStateSize bounds the state file; a larger one is corrupt.
const maxStateSize = 1 << 20

// State is what the installer knows about one application on this machine.
// It is stored as state.json (see docs/install.md) and only ever replaced
// atomically.
type State struct {
	App       string          `json:"app"`
	Installed *Installed      `json:"installed,omitempty"`
	Previous  *Installed      `json:"previous,omitempty"`
	Pending   *Pending        `json:"pending,omitempty"`
	Bad       map[string]Bad  `json:"bad,omitempty"`
	History   []string        `json:"history,omitempty"` // committed versions, oldest first
	Failure   *RollbackFailed `json:"rollback_failed,omitempty"`
	// Lost is set when the state file and its copy were both unusable:
	// Installed was rebuilt from disk and the installed version, history
	// and bad marks that were recorded are gone. client.Update refuses to
	// install from such a state until the caller says which version is
	// installed (Config.Installed, ferry update --current); the next
	// committed install clears it.
	Lost bool `json:"lost,omitempty"`
}

// Installed identifies an installed version. SHA256 is the executable's
// hash (Binary) or the artifact's (Slots). For Binary, Version is "" when
// the executable was adopted (ferry did not install it) or rebuilt from disk
// after the state file was lost.
type Installed struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Pending is an install that has started but not committed. Tries counts
// health trials; it is written before each trial starts, so a crash loop
// during trials ends in a rollback.
type Pending struct {
	Version  string    `json:"version"`
	SHA256   string    `json:"sha256"`
	Tries    int       `json:"tries"`
	Started  time.Time `json:"started"`
	Rollback string    `json:"rollback,omitempty"` // set once a rollback has begun: its reason
}

// Bad records why a version was rolled back; it is not installed again.
type Bad struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// RollbackFailed records a rollback that did not complete.
type RollbackFailed struct {
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

type stateFile struct {
	Format string          `json:"format"`
	SHA256 string          `json:"sha256"` // of the exact bytes of State
	State  json.RawMessage `json:"state"`
}

func encodeState(s *State) ([]byte, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	// Not indented: the checksum covers the exact bytes of "state".
	b, err := json.Marshal(stateFile{Format: stateFormat, SHA256: hex.EncodeToString(sum[:]), State: body})
	return append(b, '\n'), err
}

// decodeState parses a state file strictly: known format, checksum over the
// state bytes, no unknown fields, no trailing data, the expected app.
func decodeState(b []byte, app string) (*State, error) {
	var f stateFile
	if err := strictJSON(b, &f); err != nil {
		return nil, err
	}
	if f.Format != stateFormat {
		return nil, fmt.Errorf("unknown format %q", f.Format)
	}
	sum := sha256.Sum256(f.State)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return nil, fmt.Errorf("checksum mismatch: want %s, got %s", f.SHA256, got)
	}
	var s State
	if err := strictJSON(f.State, &s); err != nil {
		return nil, err
	}
	if s.App != app {
		return nil, fmt.Errorf("state is for app %q, want %q", s.App, app)
	}
	if s.Pending != nil && s.Pending.Version == "" {
		return nil, errors.New("pending install without version")
	}
	if err := s.checkVersions(); err != nil {
		return nil, err
	}
	return &s, nil
}

// checkVersions refuses a state naming a version that package release
// would refuse: every version ferry installs passed release.ValidVersion,
// so another one is not ferry's record (and a bad mark must name exactly
// the version it is against). Installed and Previous may have an empty
// version (adopted or rebuilt from disk).
func (s *State) checkVersions() error {
	var vs []string
	for _, v := range []*Installed{s.Installed, s.Previous} {
		if v != nil && v.Version != "" {
			vs = append(vs, v.Version)
		}
	}
	if s.Pending != nil {
		vs = append(vs, s.Pending.Version)
	}
	if s.Failure != nil {
		vs = append(vs, s.Failure.Version)
	}
	for v := range s.Bad {
		vs = append(vs, v)
	}
	for _, v := range append(vs, s.History...) {
		if err := release.ValidVersion(v); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	return nil
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// copySuffix names the second copy of the state file, written before the
// file itself on every save, so that a state file that is damaged later
// does not take the installed-version floor and the bad marks with it.
const copySuffix = ".copy"

// loadStatus says where loadState found the state.
type loadStatus int

const (
	stateOK       loadStatus = iota // the state file (or neither file: a fresh state)
	stateFromCopy                   // the state file was torn, corrupt or missing; its copy was good
	stateLost                       // both were unusable: a new state marked Lost
)

// loadState reads the state file, or its copy when the file is torn,
// corrupt or missing (R52). A damaged file is moved aside to NAME.corrupt
// and nothing in it is trusted. When neither file is usable but one of
// them existed, the state is new and marked Lost: the caller rebuilds what
// it can from disk, and the floor and bad marks are gone, which the client
// refuses to paper over (see State.Lost). Neither file existing is a fresh
// state.
func loadState(fsys faultfs.FS, name, app string) (*State, loadStatus, error) {
	s, found, err := readState(fsys, name, app)
	if err == nil && found {
		return s, stateOK, nil
	}
	var bad *badStateError
	if err != nil && !errors.As(err, &bad) {
		return nil, stateOK, err
	}
	if found {
		if err := fsys.Rename(name, name+".corrupt"); err != nil {
			return nil, stateLost, fmt.Errorf("move corrupt state aside: %w", err)
		}
	}
	c, copyFound, cerr := readState(fsys, name+copySuffix, app)
	switch {
	case cerr == nil && copyFound:
		return c, stateFromCopy, nil
	case cerr != nil && !errors.As(cerr, &bad):
		return nil, stateOK, cerr
	case !found && !copyFound:
		return &State{App: app}, stateOK, nil
	}
	return &State{App: app, Lost: true}, stateLost, nil
}

// badStateError is a state file that exists but does not decode.
type badStateError struct{ err error }

func (e *badStateError) Error() string { return "corrupt state: " + e.err.Error() }

// readState reads and decodes one state file; found is false when it does
// not exist. A file that does not decode is a *badStateError.
func readState(fsys faultfs.FS, name, app string) (s *State, found bool, err error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read state: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	f.Close()
	if err != nil {
		return nil, true, fmt.Errorf("read state: %w", err)
	}
	if len(b) > maxStateSize {
		return nil, true, &badStateError{fmt.Errorf("larger than %d bytes", maxStateSize)}
	}
	if s, err = decodeState(b, app); err != nil {
		return nil, true, &badStateError{err}
	}
	return s, true, nil
}

// saveState writes the copy, then the state file, each atomically. A crash
// or a failure between the two leaves the state file as it was, which is
// what loadState reads first, so the result of a save is the result of
// writing the state file. A copy that is in place but whose directory sync
// failed (atomicfile.ErrNotDurable) does not stop the state file: both live
// in one directory, which the state file's write syncs again.
func saveState(fsys faultfs.FS, name string, s *State) error {
	b, err := encodeState(s)
	if err != nil {
		return err
	}
	if err := fsys.WriteFile(name+copySuffix, b, 0o600); err != nil && !errors.Is(err, atomicfile.ErrNotDurable) {
		return fmt.Errorf("save state: %w", err)
	}
	if err := fsys.WriteFile(name, b, 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// commitVersion records v as installed.
func (s *State) commitVersion(v Installed) {
	if s.Installed != nil && s.Installed.Version != v.Version {
		prev := *s.Installed
		s.Previous = &prev
	}
	s.Installed = &v
	s.Pending = nil
	s.Failure = nil
	s.Lost = false
	s.History = append(removeString(s.History, v.Version), v.Version)
	if len(s.History) > 32 {
		s.History = s.History[len(s.History)-32:]
	}
}

func removeString(list []string, v string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
