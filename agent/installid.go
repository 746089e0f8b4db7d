package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// installID returns the state directory's install ID (STATEDIR/install-id:
// 32 lower-case hex digits and a newline, 0600), creating it once. A
// malformed file is an error, never replaced: the ID is this
// installation's cohort in every rollout. It follows PLAN8's
// client.InstallID format, which replaces it once it lands.
func installID(dir string) (string, error) {
	name := filepath.Join(dir, "install-id")
	b, err := readSmall(name)
	if errors.Is(err, fs.ErrNotExist) {
		var r [16]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", err
		}
		id := hex.EncodeToString(r[:])
		if err := atomicfile.WriteFile(name, []byte(id+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("install id: %w", err)
		}
		return id, nil
	}
	if err != nil {
		return "", fmt.Errorf("install id: %w", err)
	}
	id := strings.TrimSuffix(string(b), "\n")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("install id %s: not 32 lower-case hex digits; fix or remove it by hand (a new ID moves this machine to other rollout cohorts)", name)
	}
	return id, nil
}

func readSmall(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 128))
}
