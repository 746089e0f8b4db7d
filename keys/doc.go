// Package keys generates ferry's signing keys, stores them encrypted at rest,
// and turns them into signers and public keys for TUF metadata.
//
// There is one key type, Ed25519: it has no parameters to get wrong, its
// signatures are deterministic (no nonce to leak the key), and every TUF
// implementation supports it.
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
