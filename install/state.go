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

	"github.com/ferry-updates/ferry/internal/faultfs"
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
	return &s, nil
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

// loadState reads the state file. A missing file is a fresh state. A torn or
// corrupted one (R52) is moved aside to NAME.corrupt and not trusted at all:
// corrupt is true and the caller rebuilds the state from what is on disk.
func loadState(fsys faultfs.FS, name, app string) (s *State, corrupt bool, err error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{App: app}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read state: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("read state: %w", err)
	}
	s, perr := decodeState(b, app)
	if perr == nil && len(b) <= maxStateSize {
		return s, false, nil
	}
	if err := fsys.Rename(name, name+".corrupt"); err != nil {
		return nil, true, fmt.Errorf("move corrupt state aside: %w", err)
	}
	return &State{App: app}, true, nil
}

func saveState(fsys faultfs.FS, name string, s *State) error {
	b, err := encodeState(s)
	if err != nil {
		return err
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
