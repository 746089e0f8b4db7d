package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	settingsFile   = "ferry-repo.json"
	settingsFormat = 1
	maxSettings    = 64 << 10
)

// settings is the content of DIR/ferry-repo.json.
type settings struct {
	Format        int          `json:"format"`
	Expiries      expiriesJSON `json:"expiries"`
	KeyWorkFactor int          `json:"key_work_factor"`
	// Custody is where the offline keys are: "" (the old layout, every
	// key under DIR/keys) or custodySplit (outside DIR; DIR/keys holds
	// only the online keys).
	Custody string `json:"custody,omitempty"`

	exp Expiries // parsed Expiries
}

type expiriesJSON struct {
	Root      string `json:"root"`
	Targets   string `json:"targets"`
	Snapshot  string `json:"snapshot"`
	Timestamp string `json:"timestamp"`
}

func newSettings(o InitOptions) settings {
	return settings{
		Format: settingsFormat,
		Expiries: expiriesJSON{
			Root:      o.Expiries.Root.String(),
			Targets:   o.Expiries.Targets.String(),
			Snapshot:  o.Expiries.Snapshot.String(),
			Timestamp: o.Expiries.Timestamp.String(),
		},
		KeyWorkFactor: o.InsecureScryptWorkFactor,
		Custody:       custodyOf(o.OfflineKeys),
		exp:           o.Expiries,
	}
}

// custodySplit marks a repository whose offline keys are kept outside it.
const custodySplit = "split"

func custodyOf(offline string) string {
	if offline == "" {
		return ""
	}
	return custodySplit
}

func (s settings) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

func readSettings(dir string) (settings, error) {
	path := filepath.Join(dir, settingsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return settings{}, fmt.Errorf("%s is not a ferry repository: %s is missing", dir, settingsFile)
	}
	if err != nil {
		return settings{}, fmt.Errorf("open repository: %w", err)
	}
	s, err := parseSettings(data)
	if err != nil {
		return settings{}, fmt.Errorf("open repository: %s: %w", path, err)
	}
	return s, nil
}

func parseSettings(data []byte) (settings, error) {
	var s settings
	if len(data) > maxSettings {
		return s, fmt.Errorf("larger than %d bytes", maxSettings)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, err
	}
	if s.Format != settingsFormat {
		return s, fmt.Errorf("format %d, want %d", s.Format, settingsFormat)
	}
	if s.Custody != "" && s.Custody != custodySplit {
		return s, fmt.Errorf("custody %q: want %q or none", s.Custody, custodySplit)
	}
	if s.KeyWorkFactor < 1 || s.KeyWorkFactor > 30 {
		return s, fmt.Errorf("key_work_factor %d: want 1 to 30", s.KeyWorkFactor)
	}
	fields := []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"root", s.Expiries.Root, &s.exp.Root},
		{"targets", s.Expiries.Targets, &s.exp.Targets},
		{"snapshot", s.Expiries.Snapshot, &s.exp.Snapshot},
		{"timestamp", s.Expiries.Timestamp, &s.exp.Timestamp},
	}
	for _, f := range fields {
		d, err := time.ParseDuration(f.in)
		if err != nil || d < time.Minute {
			return s, fmt.Errorf("expiries.%s %q: want a duration of at least 1m", f.name, f.in)
		}
		*f.out = d
	}
	return s, nil
}
