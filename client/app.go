package client

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/safefile"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

// App is one application as a call to Check or Update sees it: which
// releases it wants and what this installation runs.
type App struct {
	Name     string // application name (release.ValidApp), required
	Platform string // "os/arch"; default runtime.GOOS + "/" + runtime.GOARCH
	// Channel is the rollout channel this installation follows
	// (release.ValidChannel); "" means rollout.DefaultChannel. It is
	// offered releases in its channel and in the default one.
	Channel string
	// Installed is the installed version (release.ValidVersion: 1.4.2,
	// no "v", no +build); "" means none. Update takes the higher of it and
	// the installer's record.
	Installed string
	// InstallID is this installation's cohort identity (32 lower-case hex
	// digits); "" means the state directory's (InstallID(StateDir)).
	InstallID string
	// Prerelease lets pre-release versions (1.5.0-rc.1) be offered.
	Prerelease bool
	// Progress, if set, is told the bytes done of each download.
	Progress func(done, total int64)
}

// app checks a and fills in its defaults: the platform, the channel and
// the install ID of r's state directory.
func (r *Repository) app(a App) (App, error) {
	if err := release.ValidApp(a.Name); err != nil {
		return a, err
	}
	if a.Platform == "" {
		a.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	if err := release.ValidPlatform(a.Platform); err != nil {
		return a, err
	}
	if a.Channel == "" {
		a.Channel = rollout.DefaultChannel
	}
	if err := release.ValidChannel(a.Channel); err != nil {
		return a, err
	}
	if a.Installed != "" {
		if err := release.ValidVersion(a.Installed); err != nil {
			return a, fmt.Errorf("installed %w", err)
		}
	}
	if a.InstallID == "" {
		id, err := InstallID(r.cfg.StateDir)
		if err != nil {
			return a, err
		}
		a.InstallID = id
	} else if err := validInstallID(a.InstallID); err != nil {
		return a, fmt.Errorf("App.InstallID: %w", err)
	}
	return a, nil
}

// installIDFile is the install ID's file in a state directory.
const installIDFile = "install-id"

// installIDMu serialises the creation of install IDs in this process.
var installIDMu sync.Mutex

// InstallID returns the install ID of the installation whose state
// directory is stateDir: 32 lower-case hex digits (128 random bits),
// created once as stateDir/install-id (mode 0600, written atomically) and
// read thereafter. One state directory is one installation: its cohort in
// every staged rollout is derived from this ID. A malformed file is an
// error, never silently replaced (that would move the installation to
// other cohorts). stateDir is created (0700) if missing and must be
// private to this user.
func InstallID(stateDir string) (string, error) {
	if stateDir == "" {
		return "", errors.New("install id: no state directory")
	}
	installIDMu.Lock()
	defer installIDMu.Unlock()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("install id: %w", err)
	}
	if err := safefile.CheckOwnDir(stateDir); err != nil {
		return "", fmt.Errorf("install id: state directory %w", err)
	}
	name := filepath.Join(stateDir, installIDFile)
	b, err := os.ReadFile(name)
	switch {
	case err == nil:
		id := strings.TrimSuffix(string(b), "\n")
		if err := validInstallID(id); err != nil {
			return "", fmt.Errorf("install id %s: %w (restore it, or remove it to make this state directory a new installation)", name, err)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("install id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("install id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := atomicfile.WriteFile(name, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("install id: %w", err)
	}
	return id, nil
}

// validInstallID checks the form of an install ID.
func validInstallID(id string) error {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("install id %q: want 32 lower-case hex digits", id)
	}
	return nil
}
