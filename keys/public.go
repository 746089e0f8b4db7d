package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// maxPublicFile bounds a public key file; a P-256 PEM key is ~250 bytes.
const maxPublicFile = 8 << 10

// publicFile is the public key file format: the TUF key object as root.json
// lists it, with nothing else.
type publicFile struct {
	KeyType string `json:"keytype"`
	Scheme  string `json:"scheme"`
	KeyVal  struct {
		Public string `json:"public"`
	} `json:"keyval"`
}

// ParsePublic parses a public key file (see the package doc) and returns
// the key in ferry's normal form: ed25519 as hex, ecdsa as a PKIX PEM block
// with keytype "ecdsa" (the older "ecdsa-sha2-nistp256" keytype is read
// too). Unknown fields, other key types or curves, and trailing data are
// errors.
func ParsePublic(data []byte) (*metadata.Key, error) {
	if len(data) > maxPublicFile {
		return nil, fmt.Errorf("public key: larger than %d bytes", maxPublicFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f publicFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if dec.More() {
		return nil, errors.New("public key: trailing data after the key object")
	}
	pub, err := decodePublic(f)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return tufKey(pub)
}

func decodePublic(f publicFile) (crypto.PublicKey, error) {
	switch {
	case f.KeyType == metadata.KeyTypeEd25519 && f.Scheme == metadata.KeySchemeEd25519:
		b, err := hex.DecodeString(f.KeyVal.Public)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 public value is not %d bytes of hex", ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(b), nil
	case (f.KeyType == metadata.KeyTypeECDSA_SHA2_P256 || f.KeyType == metadata.KeyTypeECDSA_SHA2_P256_COMPAT) &&
		f.Scheme == metadata.KeySchemeECDSA_SHA2_P256:
		block, rest := pem.Decode([]byte(f.KeyVal.Public))
		if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New("ecdsa public value is not one PUBLIC KEY PEM block")
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ecdsa public value: %w", err)
		}
		ec, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("ecdsa public value holds a %T key", k)
		}
		return ec, nil
	}
	return nil, fmt.Errorf("unsupported keytype %.40q with scheme %.40q (want ed25519/ed25519 or ecdsa/ecdsa-sha2-nistp256)", f.KeyType, f.Scheme)
}

// tufKey returns the TUF form of an Ed25519 or ECDSA P-256 public key.
func tufKey(pub crypto.PublicKey) (*metadata.Key, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return TUFKey(p)
	case *ecdsa.PublicKey:
		return ECDSAKey(p)
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}

// ECDSAKey returns the TUF metadata form of an ECDSA P-256 public key
// (keytype "ecdsa", scheme "ecdsa-sha2-nistp256", PKIX PEM public value).
// Any other curve is an error.
func ECDSAKey(pub *ecdsa.PublicKey) (*metadata.Key, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, errors.New("ecdsa public key: want curve P-256")
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("tuf key: %w", err)
	}
	return k, nil
}

// MarshalPublic returns k in the public key file format, indented, with a
// final newline. k must be a key ParsePublic accepts.
func MarshalPublic(k *metadata.Key) ([]byte, error) {
	if k == nil {
		return nil, errors.New("public key: nil key")
	}
	f := publicFile{KeyType: k.Type, Scheme: k.Scheme}
	f.KeyVal.Public = k.Value.PublicKey
	if _, err := decodePublic(f); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadPublic reads the public key file at path (see ParsePublic).
func ReadPublic(path string) (*metadata.Key, error) {
	data, err := readBounded(path, maxPublicFile)
	if err != nil {
		return nil, fmt.Errorf("read public key %s: %w", path, err)
	}
	k, err := ParsePublic(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WritePublic writes k to path in the public key file format, atomically,
// with mode 0644. It replaces an existing file; callers that must not
// overwrite check first.
func WritePublic(path string, k *metadata.Key) error {
	data, err := MarshalPublic(k)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// ReadPublicFiles reads each public key file with ReadPublic, in order;
// the first error is returned as is.
func ReadPublicFiles(paths []string) ([]*metadata.Key, error) {
	var out []*metadata.Key
	for _, p := range paths {
		k, err := ReadPublic(p)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}
