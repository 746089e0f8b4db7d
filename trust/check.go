package trust

import (
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// This file exposes the client's own signature checks to the publisher, so
// that a ceremony refuses at publish time exactly what clients would refuse
// later: the same canonical bytes, the same one-count-per-public-key rule,
// the same treatment of unknown or malformed keys.

// Tally is how far a document's signatures go toward one role's threshold.
type Tally struct {
	Threshold int
	// Signed are the key IDs of the role whose keys made a valid signature,
	// one per distinct public key (a key listed under two IDs, or that
	// signed twice, appears once).
	Signed []string
	// Missing are the key IDs of the role whose keys have not signed.
	Missing []string
}

// Met reports whether the threshold is reached.
func (t Tally) Met() bool { return t.Threshold >= 1 && len(t.Signed) >= t.Threshold }

// CountSignatures checks the signatures of the metadata file data against
// keyIDs (looked up in keys) and threshold, as Refresh does. It fails only
// when data is not a metadata file at all; a threshold not met is reported
// by the Tally, not as an error.
func CountSignatures(data []byte, keys map[string]*metadata.Key, keyIDs []string, threshold int) (t Tally, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = secErr(ErrInvalid, "", fmt.Sprintf("panic while verifying: %v", r))
		}
	}()
	d, err := parseDoc(data)
	if err != nil {
		return Tally{}, secErr(ErrInvalid, "", "decode").wrap(err)
	}
	t = Tally{Threshold: threshold}
	byKey := validSigners(keys, keyIDs, d)
	seen := map[string]bool{}
	for _, id := range keyIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if fp, ok := byKey[id]; ok && !seen["fp:"+fp] {
			seen["fp:"+fp] = true
			t.Signed = append(t.Signed, id)
		} else if !ok {
			t.Missing = append(t.Missing, id)
		}
	}
	return t, nil
}

// VerifyNextRoot checks next, a root.json, as the client workflow checks a
// new root reached from trusted (TUF 5.3.4-5.3.5): it must be signed by a
// threshold of trusted's root keys and by a threshold of its own, and its
// version must be trusted's plus one. Errors are *SecurityError values.
func VerifyNextRoot(trusted, next []byte) error {
	tr, _, err := decode[metadata.RootType](metadata.ROOT, metadata.ROOT, trusted)
	if err != nil {
		return err
	}
	_, _, err = nextRoot(tr, next)
	return err
}

// VerifyRole checks that data, a metadata file of a role that root defines
// (targets, snapshot or timestamp), is signed by a threshold of that role's
// keys in root. Errors are *SecurityError values.
func VerifyRole(root []byte, role string, data []byte) error {
	r, _, err := decode[metadata.RootType](metadata.ROOT, metadata.ROOT, root)
	if err != nil {
		return err
	}
	d, err := parseDoc(data)
	if err != nil {
		return secErr(ErrInvalid, role, "decode").wrap(err)
	}
	return verifyByRoot(r, role, d)
}

// CheckKeyIDs refuses keys, a root's keys or a targets role's delegation
// keys, if any is listed under an ID other than its own TUF key ID, as
// clients refuse such metadata. Errors are *SecurityError values.
func CheckKeyIDs(role string, keys map[string]*metadata.Key) error {
	return checkKeyIDs(role, keys)
}

// VerifySelfSigned checks that root, a root.json, is signed by a threshold
// of its own root keys (its expiry is not judged). A holder's trusted root
// passes it before anything is walked from it. Errors are *SecurityError
// values.
func VerifySelfSigned(root []byte) error {
	r, d, err := decode[metadata.RootType](metadata.ROOT, metadata.ROOT, root)
	if err != nil {
		return err
	}
	return verifyByRoot(r, metadata.ROOT, d)
}

// VerifyDelegated checks that data, the metadata of role, is signed by a
// threshold of the keys that targets (a targets.json) delegates role to.
// Errors are *SecurityError values.
func VerifyDelegated(targets []byte, role string, data []byte) error {
	t, _, err := decode[metadata.TargetsType](metadata.TARGETS, metadata.TARGETS, targets)
	if err != nil {
		return err
	}
	if _, _, err := decode[metadata.TargetsType](role, metadata.TARGETS, data); err != nil {
		return err
	}
	d, err := parseDoc(data)
	if err != nil {
		return secErr(ErrInvalid, role, "decode").wrap(err)
	}
	if del := t.Signed.Delegations; del != nil {
		for _, r := range del.Roles {
			if r.Name == role {
				return verifyThreshold(role, del.Keys, r.KeyIDs, r.Threshold, d)
			}
		}
	}
	return secErr(ErrInvalid, role, "targets does not delegate the role")
}
