package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"strconv"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/ferry-updates/ferry/keys"
)

const (
	// envPassphrase holds the passphrase that encrypts the repository keys.
	envPassphrase = "FERRY_PASSPHRASE"
	// envOfflinePassphrase, if set, is the passphrase of the offline keys
	// (--offline-keys, --app-key) instead of FERRY_PASSPHRASE, so that the
	// passphrase a server has in its environment opens none of them.
	envOfflinePassphrase = "FERRY_OFFLINE_PASSPHRASE"
	// envInsecureWorkFactor lowers the scrypt work factor of newly encrypted
	// keys. It exists for tests and demos only: a low factor makes the
	// passphrase cheap to brute-force.
	envInsecureWorkFactor = "FERRY_INSECURE_SCRYPT_WORK_FACTOR"
)

// passphraseSource says where a command may read the passphrase from.
type passphraseSource struct {
	file string // --passphrase-file
	// envVar and flag name where this passphrase comes from when they are
	// not FERRY_PASSPHRASE and --passphrase-file (the offline keys' own).
	envVar, flag string
}

// errNoPassphrase is returned when no source of a passphrase is available.
var errNoPassphrase = errors.New("no passphrase available")

// get returns the passphrase from --passphrase-file, FERRY_PASSPHRASE or a
// terminal prompt, in that order. confirm asks twice on a terminal.
func (e *env) passphrase(src passphraseSource, confirm bool) ([]byte, error) {
	if src.file != "" {
		b, err := os.ReadFile(src.file)
		if err != nil {
			return nil, fmt.Errorf("read passphrase file: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("passphrase file %s is empty", src.file)
		}
		return b, nil
	}
	name := src.envVar
	if name == "" {
		name = envPassphrase
	}
	if p := e.getenv(name); p != "" {
		return []byte(p), nil
	}
	f, ok := e.terminal()
	if !ok {
		return nil, withHint(errNoPassphrase,
			"set "+name+", pass "+cmp.Or(src.flag, "--passphrase-file")+" FILE, or run on a terminal to be prompted")
	}
	return e.prompt(f, confirm)
}

// minPassphrase is the length below which a new passphrase gets a warning.
const minPassphrase = 8

// newPassphrase is passphrase for encrypting new keys: it warns when the
// passphrase is short, whatever its source.
func (e *env) newPassphrase(src passphraseSource) ([]byte, error) {
	p, err := e.passphrase(src, true)
	if err == nil && utf8.RuneCount(p) < minPassphrase {
		fmt.Fprintf(e.stderr, "ferry: warning: the passphrase has %d characters: whoever copies the key files can guess a short one; use at least %d (a few random words)\n",
			utf8.RuneCount(p), minPassphrase)
	}
	return p, err
}

// terminal returns stdin if it is a terminal to prompt on.
func (e *env) terminal() (*os.File, bool) {
	f, ok := e.stdin.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

// promptAttempts is how many times a wrong passphrase typed at the prompt
// is asked for again.
const promptAttempts = 3

// promptFor asks on the terminal f for the passphrase of the key file
// path, and asks again (up to promptAttempts in all) while it is wrong.
func (e *env) promptFor(f *os.File, path string) ([]byte, error) {
	for i := 1; ; i++ {
		p, err := e.prompt(f, false)
		if err != nil {
			return nil, err
		}
		_, err = keys.Load(path, p)
		if !errors.Is(err, keys.ErrWrongPassphrase) {
			return p, nil // right, or a problem the key's own open reports
		}
		if i == promptAttempts {
			return nil, fmt.Errorf("%w (%d attempts)", err, i)
		}
		fmt.Fprintf(e.stderr, "ferry: wrong passphrase for %s; try again\n", path)
	}
}

// prompt reads a passphrase from the terminal f without echo.
func (e *env) prompt(f *os.File, confirm bool) ([]byte, error) {
	fmt.Fprint(e.stderr, "Passphrase: ")
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if !confirm {
		return p, nil
	}
	fmt.Fprint(e.stderr, "Passphrase (again): ")
	again, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if !bytes.Equal(p, again) {
		return nil, errors.New("passphrases do not match")
	}
	return p, nil
}

// insecureWorkFactor returns the scrypt work factor requested through
// FERRY_INSECURE_SCRYPT_WORK_FACTOR, or 0 (the library default) if unset.
func (e *env) insecureWorkFactor() (int, error) {
	s := e.getenv(envInsecureWorkFactor)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 30 {
		return 0, fmt.Errorf("%s=%q: want an integer from 1 to 30", envInsecureWorkFactor, s)
	}
	return n, nil
}
