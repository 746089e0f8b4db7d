// Package keys generates ferry's signing keys, stores them encrypted at rest,
// and turns them into signers and public keys for TUF metadata.
//
// # Key types
//
// ferry makes Ed25519 keys (Generate, key files): Ed25519 has no
// parameters to get wrong, its signatures are deterministic (no nonce to
// leak the key), and every TUF implementation supports it.
//
// The one other type is ECDSA P-256 (keytype "ecdsa", scheme
// "ecdsa-sha2-nistp256"), and only for keys that live in a device without
// Ed25519: PKCS#11 tokens driven through crypto11 and AWS KMS. It is safe
// there because every choice is fixed, not negotiated: the message is
// hashed with SHA-256 by ferry, never by the device, so the device signs
// exactly the digest of the canonical bytes; the signature is ASN.1 DER, the
// one encoding TUF verifiers accept for this scheme; the nonce comes from
// the device's own generator inside the device, which is what HSMs and KMS
// are certified for; and NewECDSASigner checks each signature against the
// public key before returning it, so a device that signs with another key
// or in another encoding is caught at the publisher. The public key itself
// is read from the device once and pinned in root.json or targets.json by
// its key ID, like any other key. No other curve, hash or encoding is
// accepted anywhere in this package.
//
// # Signers
//
// Signer is the one interface behind every signing call. Open turns a
// reference into one: the path of a key file (below), or a URI of a
// registered scheme. Schemes that need large or cgo dependencies live in
// their own packages and register themselves when imported, so a program
// that only verifies updates never links them: keys/awskms ("awskms://")
// and keys/pkcs11 ("pkcs11:", built only with -tags pkcs11). See
// docs/signers.md.
//
// # Public key file format
//
// A public key file (KEY.pub, written by WritePublic and by
// "ferry key generate") is the TUF key object as root.json lists it, as
// JSON with exactly these fields:
//
//	{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "HEX"}}
//	{"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": "PEM"}}
//
// HEX is the 32-byte Ed25519 key in lower-case hex; PEM is a PKIX
// "PUBLIC KEY" block of a P-256 key. ReadPublic refuses unknown fields,
// other types, curves and schemes, trailing data and files over 8 KiB.
// The key ID is the TUF key ID of the key in this normal form.
//
// # Key file format
//
// A key file is an age-encrypted file (binary format, one scrypt passphrase
// stanza) whose plaintext is the private key as a PKCS #8 PEM block
// ("PRIVATE KEY"). Key files are written with mode 0600 through
// internal/atomicfile, in a directory created with mode 0700. The scrypt work
// factor (log2 N) defaults to DefaultWorkFactor; callers may lower it only
// for tests, where the full cost would make suites slow.
//
// # Errors
//
// Load distinguishes a wrong passphrase (errors.Is(err, ErrWrongPassphrase),
// message "wrong passphrase for key FILE") from a damaged file
// (errors.Is(err, ErrCorrupted), message "key file FILE is corrupted: ...").
//
// The functions in this package are safe for concurrent use.
package keys
