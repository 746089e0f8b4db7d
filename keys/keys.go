package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// DefaultWorkFactor is the scrypt work factor (log2 N) used when the caller
// passes 0. 18 is age's own default: about a second per key on a laptop,
// which makes offline guessing of the passphrase expensive.
const DefaultWorkFactor = 18

// maxKeyFile bounds how much of a key file is read; a real one is ~400 bytes.
const maxKeyFile = 64 << 10

var (
	// ErrWrongPassphrase means the key file is intact but the passphrase does
	// not open it.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrCorrupted means the key file cannot be parsed or decrypted.
	ErrCorrupted = errors.New("key file is corrupted")
)

// Error is returned by Load. Its message is one line naming the file.
type Error struct {
	Path string
	Kind error // ErrWrongPassphrase or ErrCorrupted
	Err  error // the underlying cause, if any
}

func (e *Error) Error() string {
	if e.Kind == ErrWrongPassphrase {
		return "wrong passphrase for key " + e.Path
	}
	return fmt.Sprintf("key file %s is corrupted: %v", e.Path, e.Err)
}

// Unwrap returns the kind, so errors.Is(err, ErrWrongPassphrase) works.
func (e *Error) Unwrap() error { return e.Kind }

// Generate returns a new Ed25519 private key from crypto/rand.
func Generate() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return priv, nil
}

// Save encrypts priv with passphrase and writes it atomically to path with
// mode 0600, creating path's directory with mode 0700 if needed. workFactor
// is the scrypt log2 N; 0 means DefaultWorkFactor.
func Save(path string, priv ed25519.PrivateKey, passphrase []byte, workFactor int) error {
	if len(passphrase) == 0 {
		return fmt.Errorf("save key %s: empty passphrase", path)
	}
	if workFactor == 0 {
		workFactor = DefaultWorkFactor
	}
	if workFactor < 1 || workFactor > 30 {
		return fmt.Errorf("save key %s: scrypt work factor %d out of range 1..30", path, workFactor)
	}
	if len(priv) != ed25519.PrivateKeySize { // x509 would panic on a short one
		return fmt.Errorf("save key %s: ed25519 private key of %d bytes, want %d", path, len(priv), ed25519.PrivateKeySize)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	rcpt, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	rcpt.SetWorkFactor(workFactor)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o600, func(w io.Writer) error {
		aw, err := age.Encrypt(w, rcpt)
		if err != nil {
			return err
		}
		if _, err := aw.Write(pemBytes); err != nil {
			return err
		}
		return aw.Close()
	})
}

// Load reads and decrypts the key file at path. Errors other than I/O errors
// are *Error values (see the package doc).
func Load(path string, passphrase []byte) (ed25519.PrivateKey, error) {
	data, err := readBounded(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if len(passphrase) == 0 {
		return nil, &Error{Path: path, Kind: ErrWrongPassphrase}
	}
	id, err := age.NewScryptIdentity(string(passphrase))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	r, err := age.Decrypt(bytes.NewReader(data), id)
	var nomatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &nomatch) && isScryptOnly(nomatch) && isIncorrectPassphrase(nomatch):
		return nil, &Error{Path: path, Kind: ErrWrongPassphrase}
	case err != nil:
		return nil, &Error{Path: path, Kind: ErrCorrupted, Err: err}
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxKeyFile))
	if err != nil {
		return nil, &Error{Path: path, Kind: ErrCorrupted, Err: err}
	}
	priv, err := parsePrivate(plain)
	if err != nil {
		return nil, &Error{Path: path, Kind: ErrCorrupted, Err: err}
	}
	return priv, nil
}

// readBounded reads at most limit bytes of path; a longer file is an error.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

func isScryptOnly(e *age.NoIdentityMatchError) bool {
	return len(e.StanzaTypes) == 1 && e.StanzaTypes[0] == "scrypt"
}

// isIncorrectPassphrase tells a failed authentication of the wrapped file key
// (wrong passphrase) from a malformed stanza (corruption).
func isIncorrectPassphrase(e *age.NoIdentityMatchError) bool {
	return len(e.Errors) == 1 && strings.HasSuffix(e.Errors[0].Error(), "incorrect passphrase")
}

func parsePrivate(plain []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(plain)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("no single PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key type %T, want ed25519", k)
	}
	return priv, nil
}

// TUFKey returns the TUF metadata form of pub (keytype and scheme
// "ed25519", hex public value); its ID() is the TUF key ID.
func TUFKey(pub ed25519.PublicKey) (*metadata.Key, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key: %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("tuf key: %w", err)
	}
	return k, nil
}

// KeyID returns the TUF key ID of pub.
func KeyID(pub ed25519.PublicKey) (string, error) {
	k, err := TUFKey(pub)
	if err != nil {
		return "", err
	}
	return k.ID()
}
