package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/term"
)

const (
	// envPassphrase holds the passphrase that encrypts the repository keys.
	envPassphrase = "FERRY_PASSPHRASE"
	// envInsecureWorkFactor lowers the scrypt work factor of newly encrypted
	// keys. It exists for tests and demos only: a low factor makes the
	// passphrase cheap to brute-force.
	envInsecureWorkFactor = "FERRY_INSECURE_SCRYPT_WORK_FACTOR"
)

// passphraseSource says where a command may read the passphrase from.
type passphraseSource struct {
	file string // --passphrase-file
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
	if p := e.getenv(envPassphrase); p != "" {
		return []byte(p), nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, withHint(errNoPassphrase,
			"set "+envPassphrase+", pass --passphrase-file FILE, or run on a terminal to be prompted")
	}
	return e.prompt(f, confirm)
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
