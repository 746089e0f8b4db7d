package keys

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Signer is one signing key, wherever it is held: an age-encrypted file, a
// PKCS#11 token or a KMS. Every signing call in ferry goes through it.
//
// Key returns the public key as TUF metadata lists it (its ID() is the key
// ID); it never fails once the Signer exists. Sign returns a signature over
// msg that verifies under Key() with Key's scheme; on error nothing was
// signed and the error says which key failed. Implementations are safe for
// concurrent use.
type Signer interface {
	Key() *metadata.Key
	Sign(ctx context.Context, msg []byte) ([]byte, error)
}

// Passphrase returns the passphrase for the key file at path. It is called
// only for file keys, at most once per Open.
type Passphrase func(path string) ([]byte, error)

// Opener opens a signer from a reference of one scheme (see Register).
type Opener func(ctx context.Context, ref string, pass Passphrase) (Signer, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// Register makes Open hand references that start with prefix (for example
// "pkcs11:" or "awskms://") to open. It is called from init functions of
// the files that implement a scheme; registering a prefix twice panics.
func Register(prefix string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[prefix]; dup {
		panic("keys: signer scheme registered twice: " + prefix)
	}
	openers[prefix] = open
}

// Open returns the signer that ref names: a registered scheme's URI
// ("pkcs11:...", "awskms://...") or else the path of an age-encrypted key
// file, decrypted with pass(path). A scheme this build lacks is an error
// that says how to get it.
func Open(ctx context.Context, ref string, pass Passphrase) (Signer, error) {
	openersMu.RLock()
	for prefix, open := range openers {
		if strings.HasPrefix(ref, prefix) {
			openersMu.RUnlock()
			return open(ctx, ref, pass)
		}
	}
	openersMu.RUnlock()
	if strings.HasPrefix(ref, "pkcs11:") {
		return nil, errors.New("signer " + Redact(ref) + ": this ferry was built without PKCS#11 support (build with -tags pkcs11)")
	}
	if strings.HasPrefix(ref, "awskms://") {
		return nil, errors.New("signer " + Redact(ref) + ": this program does not include the AWS KMS signer (import github.com/ferry-updates/ferry/keys/awskms)")
	}
	if i := strings.Index(ref, "://"); i > 0 && !strings.ContainsAny(ref[:i], `/\.`) {
		return nil, fmt.Errorf("signer %s: unknown scheme %q", Redact(ref), ref[:i])
	}
	if pass == nil {
		return nil, fmt.Errorf("signer %s: a passphrase is needed to open a key file", ref)
	}
	p, err := pass(ref)
	if err != nil {
		return nil, err
	}
	priv, err := Load(ref, p)
	if err != nil {
		return nil, err
	}
	return NewFileSigner(priv)
}

// fileSigner signs with an Ed25519 key held in memory (decrypted from a key
// file). Ed25519 signs the message itself; there is no pre-hash to choose.
type fileSigner struct {
	priv ed25519.PrivateKey
	key  *metadata.Key
}

var _ Signer = (*fileSigner)(nil)

// NewFileSigner returns a Signer for an in-memory Ed25519 private key.
func NewFileSigner(priv ed25519.PrivateKey) (Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	k, err := TUFKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &fileSigner{priv: priv, key: k}, nil
}

func (s *fileSigner) Key() *metadata.Key { return s.key }

func (s *fileSigner) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

// TUFSigner adapts s to the signature.Signer that go-tuf's Metadata.Sign
// takes. ctx bounds every signing call made through it.
func TUFSigner(ctx context.Context, s Signer) signature.Signer {
	return &tufSigner{ctx: ctx, s: s}
}

type tufSigner struct {
	ctx context.Context
	s   Signer
}

var _ signature.Signer = (*tufSigner)(nil)

func (t *tufSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return t.s.Key().ToPublicKey()
}

func (t *tufSigner) SignMessage(r io.Reader, opts ...signature.SignOption) ([]byte, error) {
	msg, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	ctx := t.ctx
	for _, o := range opts {
		o.ApplyContext(&ctx)
	}
	return t.s.Sign(ctx, msg)
}

// secretAttr matches the attributes of a signer reference that carry a
// secret (a PKCS#11 PIN given inline, RFC 7512 "pin-value").
var secretAttr = regexp.MustCompile(`(?i)(pin-value=)[^;?&]*`)

// Redact returns ref with any inline secret replaced, for messages and
// logs: a signer reference may carry a PIN, which must not be printed.
func Redact(ref string) string {
	return secretAttr.ReplaceAllString(ref, "${1}REDACTED")
}
