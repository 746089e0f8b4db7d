package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// SignDigest signs a SHA-256 digest with an ECDSA P-256 private key held
// elsewhere (a PKCS#11 token, a KMS) and returns the ASN.1 DER signature.
type SignDigest func(ctx context.Context, digest []byte) ([]byte, error)

// ecdsaSigner is a Signer for an ECDSA P-256 key that never leaves its
// device: it hashes the message here and has the device sign the digest.
type ecdsaSigner struct {
	name string // the reference, for errors
	pub  *ecdsa.PublicKey
	key  *metadata.Key
	sign SignDigest
}

var _ Signer = (*ecdsaSigner)(nil)

// NewECDSASigner returns a Signer with TUF scheme ecdsa-sha2-nistp256 for
// the P-256 public key pub, whose private half sign uses. name identifies
// the key in errors (its reference, never a secret).
//
// Every signature sign returns is checked against pub before Sign returns
// it, so a device that signs with another key, over another digest or in
// another encoding fails here, at the publisher, rather than in every
// client.
func NewECDSASigner(name string, pub *ecdsa.PublicKey, sign SignDigest) (Signer, error) {
	k, err := ECDSAKey(pub)
	if err != nil {
		return nil, fmt.Errorf("signer %s: %w", name, err)
	}
	if sign == nil {
		return nil, fmt.Errorf("signer %s: no signing function", name)
	}
	return &ecdsaSigner{name: name, pub: pub, key: k, sign: sign}, nil
}

func (s *ecdsaSigner) Key() *metadata.Key { return s.key }

// Sign signs SHA-256(msg): the scheme ecdsa-sha2-nistp256 is ECDSA over
// the SHA-256 digest, encoded as ASN.1 DER.
func (s *ecdsaSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	sig, err := s.sign(ctx, d[:])
	if err != nil {
		return nil, fmt.Errorf("signer %s: %w", s.name, err)
	}
	if !ecdsa.VerifyASN1(s.pub, d[:], sig) {
		return nil, fmt.Errorf("signer %s: %w", s.name, ErrBadSignature)
	}
	return sig, nil
}

// ErrBadSignature means a remote signer returned a signature that does not
// verify under the public key it reported: nothing was signed.
var ErrBadSignature = errors.New("device returned a signature that does not verify under its public key")
