//go:build pkcs11

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/ThalesGroup/crypto11"

	"github.com/ferry-updates/ferry/keys"
)

func init() {
	keys.Register(Scheme, func(ctx context.Context, ref string, _ keys.Passphrase) (keys.Signer, error) {
		return Open(ctx, ref)
	})
}

// Open returns a signer for the one ECDSA P-256 key pair in the token that
// the pkcs11: URI ref names. No key, several matching keys, or a key of
// another type or curve are errors.
//
// The token session stays open for the life of the process (a signer has
// no Close): open a signer once and keep it.
func Open(ctx context.Context, ref string) (_ keys.Signer, err error) {
	u, c, err := configure(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer closeOnError(c, &err)
	found, err := c.FindKeyPairs(u.ID, label(u))
	if err != nil {
		return nil, fmt.Errorf("signer %s: find key: %w", u, err)
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("signer %s: %d key pairs match, want exactly 1", u, len(found))
	}
	return newSigner(u, found[0])
}

// Generate creates a new ECDSA P-256 key pair in the token ref names, with
// CKA_LABEL object and CKA_ID id (a random 16-byte id when the URI gives
// none), sensitive and not extractable, and returns its signer. It refuses
// when a key pair with that label or id already exists.
func Generate(ctx context.Context, ref string) (_ keys.Signer, err error) {
	u, c, err := configure(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer closeOnError(c, &err)
	found, err := c.FindKeyPairs(u.ID, label(u))
	if err != nil {
		return nil, fmt.Errorf("signer %s: find key: %w", u, err)
	}
	if len(found) > 0 {
		return nil, fmt.Errorf("signer %s: the token already holds a key pair with this object or id", u)
	}
	id := u.ID
	if len(id) == 0 {
		id = make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
	}
	var k crypto11.Signer
	if u.Object != "" {
		k, err = c.GenerateECDSAKeyPairWithLabel(id, []byte(u.Object), elliptic.P256())
	} else {
		k, err = c.GenerateECDSAKeyPair(id, elliptic.P256())
	}
	if err != nil {
		return nil, fmt.Errorf("signer %s: generate key pair: %w", u, err)
	}
	u.ID = id
	return newSigner(u, k)
}

// configure parses ref and opens a crypto11 context on its token, logged in
// with its PIN. crypto11 shares one initialised module per library path.
func configure(ctx context.Context, ref string) (*URI, *crypto11.Context, error) {
	u, err := ParseURI(ref)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	pin, err := u.PIN()
	if err != nil {
		return nil, nil, fmt.Errorf("signer %s: %w", u, err)
	}
	c, err := crypto11.Configure(&crypto11.Config{
		Path:              u.ModulePath,
		TokenLabel:        u.Token,
		TokenSerial:       u.Serial,
		SlotNumber:        u.SlotID,
		Pin:               pin,
		LoginNotSupported: pin == "",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("signer %s: open token: %w", u, err)
	}
	return u, c, nil
}

func closeOnError(c *crypto11.Context, err *error) {
	if *err != nil {
		c.Close()
	}
}

func label(u *URI) []byte {
	if u.Object == "" {
		return nil
	}
	return []byte(u.Object)
}

func newSigner(u *URI, k crypto11.Signer) (keys.Signer, error) {
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("signer %s: the key is a %T, want ECDSA P-256", u, k.Public())
	}
	return keys.NewECDSASigner(u.String(), pub, func(ctx context.Context, digest []byte) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// crypto11 returns ECDSA signatures ASN.1 DER encoded.
		return k.Sign(rand.Reader, digest, crypto.SHA256)
	})
}
