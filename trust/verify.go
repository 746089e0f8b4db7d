package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// This file is the only place that checks signatures. Signatures are
// checked over the canonical form of the "signed" object exactly as served
// (never a re-encoding of decoded structs), each public key counts at most
// once toward a threshold whatever its key ids and types, keys of unknown
// types or malformed key material are ignored (they never count, and never
// reach go-tuf, whose Ed25519 path panics on a wrong key length).

// doc is one metadata file as served: the canonical bytes its signatures
// cover, and the signatures.
type doc struct {
	canon []byte
	sigs  []metadata.Signature
}

// parseDoc splits data into its signed part and signatures.
func parseDoc(data []byte) (*doc, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, err
	}
	for k := range env {
		if k != "signed" && k != "signatures" &&
			(strings.EqualFold(k, "signed") || strings.EqualFold(k, "signatures")) {
			return nil, fmt.Errorf("ambiguous member %.40q", k)
		}
	}
	signed, ok := env["signed"]
	if !ok {
		return nil, errors.New(`missing "signed"`)
	}
	canon, err := canonicalize(signed)
	if err != nil {
		return nil, err
	}
	sigs, err := parseSignatures(env["signatures"])
	if err != nil {
		return nil, err
	}
	return &doc{canon: canon, sigs: sigs}, nil
}

// parseSignatures reads the signatures strictly: each is an object with
// exactly the members "keyid" (a string) and "sig" (lower- or upper-case
// hex), so no spelling variant of a member is silently accepted.
func parseSignatures(raw json.RawMessage) ([]metadata.Signature, error) {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, errors.New(`missing or malformed "signatures"`)
	}
	sigs := make([]metadata.Signature, 0, len(list))
	for _, m := range list {
		var s metadata.Signature
		var hexSig string
		if len(m) != 2 || json.Unmarshal(m["keyid"], &s.KeyID) != nil || json.Unmarshal(m["sig"], &hexSig) != nil {
			return nil, errors.New(`malformed signature: want exactly "keyid" and "sig"`)
		}
		b, err := hex.DecodeString(hexSig)
		if err != nil {
			return nil, fmt.Errorf("malformed signature hex: %w", err)
		}
		s.Signature = b
		sigs = append(sigs, s)
	}
	return sigs, nil
}

// header is what every role has in common.
type header struct {
	typ     string
	version int64
	expires time.Time
}

func headerOf(signed any) header {
	switch s := signed.(type) {
	case *metadata.RootType:
		return header{s.Type, s.Version, s.Expires}
	case *metadata.TimestampType:
		return header{s.Type, s.Version, s.Expires}
	case *metadata.SnapshotType:
		return header{s.Type, s.Version, s.Expires}
	case *metadata.TargetsType:
		return header{s.Type, s.Version, s.Expires}
	}
	panic("unreachable")
}

// decode parses untrusted bytes as metadata of type T for role. It never
// panics: a panic inside the decoders becomes an ErrInvalid error.
func decode[T metadata.Roles](role, wantType string, data []byte) (md *metadata.Metadata[T], d *doc, err error) {
	defer func() {
		if r := recover(); r != nil {
			md, d, err = nil, nil, secErr(ErrInvalid, role, fmt.Sprintf("panic while decoding: %v", r))
		}
	}()
	if d, err = parseDoc(data); err != nil {
		return nil, nil, secErr(ErrInvalid, role, "decode").wrap(err)
	}
	md, err = new(metadata.Metadata[T]).FromBytes(data)
	if err != nil {
		return nil, nil, secErr(ErrInvalid, role, "decode").wrap(err)
	}
	h := headerOf(&md.Signed)
	if h.typ != wantType {
		return nil, nil, secErr(ErrInvalid, role, "wrong _type").want(wantType, h.typ)
	}
	if h.version < 1 {
		return nil, nil, secErr(ErrInvalid, role, "version must be >= 1").want(">= 1", h.version)
	}
	if err := checkKeyIDs(role, listedKeys(&md.Signed)); err != nil {
		return nil, nil, err
	}
	return md, d, nil
}

// listedKeys returns the keys a root or targets role lists (root's keys, a
// targets role's delegation keys), nil for other roles.
func listedKeys(signed any) map[string]*metadata.Key {
	switch s := signed.(type) {
	case *metadata.RootType:
		return s.Keys
	case *metadata.TargetsType:
		if s.Delegations != nil {
			return s.Delegations.Keys
		}
	}
	return nil
}

// checkKeyIDs refuses metadata that lists a key under an ID other than the
// key's own TUF key ID (the SHA-256 of its canonical JSON form): an ID must
// name exactly one key, or a signer could read one key's ID and find
// another key's material behind it.
func checkKeyIDs(role string, keys map[string]*metadata.Key) error {
	for _, id := range sortedIDs(keys) {
		if !keyIDMatches(id, keys[id]) {
			return secErr(ErrInvalid, role, "key id is not the id of the key it lists").want(id, computedID(keys[id]))
		}
	}
	return nil
}

// keyIDMatches reports whether id is k's own key ID.
func keyIDMatches(id string, k *metadata.Key) bool {
	return k != nil && computedID(k) == id
}

func computedID(k *metadata.Key) string {
	if k == nil {
		return "no key"
	}
	// Not k.ID(): it caches, and a copied or edited Key keeps the old ID.
	data, err := cjson.EncodeCanonical(k)
	if err != nil {
		return "no key id"
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func sortedIDs(keys map[string]*metadata.Key) []string {
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// pubKey is a validated public key.
type pubKey struct {
	fingerprint string // identical for the same key under any key id or type
	verify      func(msg, sig []byte) bool
}

// parseKey validates k. Unknown types and schemes, and malformed key
// material, are errors: such keys are ignored, never counted.
func parseKey(k *metadata.Key) (*pubKey, error) {
	if k == nil {
		return nil, errors.New("missing key")
	}
	switch {
	case k.Type == metadata.KeyTypeEd25519 && k.Scheme == metadata.KeySchemeEd25519:
		b, err := hex.DecodeString(k.Value.PublicKey)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("malformed ed25519 public key (%d bytes)", len(b))
		}
		pub := ed25519.PublicKey(b)
		return &pubKey{"ed25519:" + hex.EncodeToString(b), func(m, s []byte) bool { return ed25519.Verify(pub, m, s) }}, nil
	case (k.Type == metadata.KeyTypeECDSA_SHA2_P256 || k.Type == metadata.KeyTypeECDSA_SHA2_P256_COMPAT) &&
		(k.Scheme == metadata.KeySchemeECDSA_SHA2_P256 || k.Scheme == metadata.KeySchemeECDSA_SHA2_P384):
		return parseECDSA(k)
	case k.Type == metadata.KeyTypeRSASSA_PSS_SHA256 && k.Scheme == metadata.KeySchemeRSASSA_PSS_SHA256:
		return parseRSA(k)
	}
	return nil, fmt.Errorf("unsupported key type %.40q scheme %.40q", k.Type, k.Scheme)
}

func parsePEM(s string) (any, string, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, "", errors.New("malformed PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", err
	}
	return pub, "pkix:" + hex.EncodeToString(block.Bytes), nil
}

func parseECDSA(k *metadata.Key) (*pubKey, error) {
	pub, fp, err := parsePEM(k.Value.PublicKey)
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	curve, h := elliptic.P256(), crypto.SHA256
	if k.Scheme == metadata.KeySchemeECDSA_SHA2_P384 {
		curve, h = elliptic.P384(), crypto.SHA384
	}
	if !ok || ec.Curve != curve {
		return nil, errors.New("ecdsa key does not match its scheme")
	}
	return &pubKey{fp, func(m, s []byte) bool { return ecdsa.VerifyASN1(ec, digest(h, m), s) }}, nil
}

func parseRSA(k *metadata.Key) (*pubKey, error) {
	pub, fp, err := parsePEM(k.Value.PublicKey)
	if err != nil {
		return nil, err
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok || rk.N.BitLen() < 2048 {
		return nil, errors.New("rsa key missing or shorter than 2048 bits")
	}
	return &pubKey{fp, func(m, s []byte) bool {
		return rsa.VerifyPSS(rk, crypto.SHA256, digest(crypto.SHA256, m), s, nil) == nil
	}}, nil
}

func digest(h crypto.Hash, m []byte) []byte {
	if h == crypto.SHA384 {
		d := sha512.Sum384(m)
		return d[:]
	}
	d := sha256.Sum256(m)
	return d[:]
}

// verifyThreshold checks that d carries valid signatures from at least
// threshold distinct public keys among keyIDs.
func verifyThreshold(role string, keys map[string]*metadata.Key, keyIDs []string, threshold int, d *doc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = secErr(ErrInvalid, role, fmt.Sprintf("panic while verifying: %v", r))
		}
	}()
	if threshold < 1 {
		return secErr(ErrInvalid, role, "invalid threshold").want(">= 1", threshold)
	}
	valid := map[string]bool{}
	for _, fp := range validSigners(keys, keyIDs, d) {
		valid[fp] = true
	}
	if len(valid) < threshold {
		e := secErr(ErrBadSignature, role, "not enough valid signatures from distinct keys").
			want(fmt.Sprintf("%d of keyids %v", threshold, keyIDs), len(valid))
		for _, s := range d.sigs {
			e.KeyIDs = append(e.KeyIDs, s.KeyID)
		}
		return e
	}
	return nil
}

// validSigners returns, for each of keyIDs whose key made a valid
// signature over d, the fingerprint of that public key. Callers count
// fingerprints, not IDs, so one key under two IDs counts once.
func validSigners(keys map[string]*metadata.Key, keyIDs []string, d *doc) map[string]string {
	out := map[string]string{}
	for _, id := range keyIDs {
		if _, done := out[id]; done {
			continue
		}
		pk, err := parseKey(keys[id])
		if err != nil || !keyIDMatches(id, keys[id]) {
			continue // unknown or malformed keys, or keys under a foreign id, never count
		}
		for _, s := range d.sigs {
			if s.KeyID == id && pk.verify(d.canon, s.Signature) {
				out[id] = pk.fingerprint
				break
			}
		}
	}
	return out
}

// verifyByRoot checks d against role's keys and threshold in root.
func verifyByRoot(root *metadata.Metadata[metadata.RootType], role string, d *doc) error {
	r, ok := root.Signed.Roles[role]
	if !ok || r == nil {
		return secErr(ErrInvalid, role, "root does not define the role")
	}
	return verifyThreshold(role, root.Signed.Keys, r.KeyIDs, r.Threshold, d)
}

// sanitizeRoot returns a copy of root without keys that parseKey rejects,
// which is what go-tuf's own checks are given.
func sanitizeRoot(root *metadata.Metadata[metadata.RootType]) *metadata.Metadata[metadata.RootType] {
	c := *root
	c.Signed.Keys = map[string]*metadata.Key{}
	for id, k := range root.Signed.Keys {
		if _, err := parseKey(k); err == nil {
			c.Signed.Keys[id] = k
		}
	}
	c.Signed.Roles = map[string]*metadata.Role{}
	for name, r := range root.Signed.Roles {
		if r == nil {
			continue
		}
		nr := *r
		nr.KeyIDs = nil
		for _, id := range r.KeyIDs {
			if _, ok := c.Signed.Keys[id]; ok {
				nr.KeyIDs = append(nr.KeyIDs, id)
			}
		}
		c.Signed.Roles[name] = &nr
	}
	return &c
}
