package trust

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/sentinel"
)

// ErrNotFound is wrapped by Source errors for a file the mirror does not
// have, and by Target for a target path that no trusted role lists (then
// with ErrNotListed) or that the delegation limit kept it from finding. It
// is fetch.ErrNotFound (one value, see internal/sentinel).
var ErrNotFound = sentinel.ErrNotFound

// ErrNotListed is wrapped by Target's error when the search ended without
// any trusted role listing the path: only this error means "there is no
// such target". It also wraps ErrNotFound. A role file the mirror does not
// have (a Source's ErrNotFound), a role that fails verification, or a
// search cut short by MaxDelegations is another error, and never wraps
// ErrNotListed: a caller that takes "not listed" for "nothing to apply"
// (no rollout decision, no minimum) must branch on ErrNotListed, not on
// ErrNotFound, or a mirror hiding a file would undo what it says.
var ErrNotListed = fmt.Errorf("%w: listed by no trusted role", ErrNotFound)

// ErrForbidden is wrapped by Source errors for a file the mirror refuses
// to serve (HTTP 403). Hosts such as S3 answer 403 for a missing object, so
// Refresh takes it, like ErrNotFound, as the end of the root chain (and as
// an error for every other file).
var ErrForbidden = errors.New("forbidden")

// Kinds of security failure. A *SecurityError wraps exactly one of them, so
// callers branch with errors.Is(err, trust.ErrRollback) and read the
// evidence with errors.As.
var (
	ErrBadSignature = errors.New("signature threshold not met")
	ErrRollback     = errors.New("rollback")
	ErrExpired      = errors.New("expired (potential freeze attack)")
	ErrMismatch     = errors.New("does not match parent metadata")
	ErrInvalid      = errors.New("invalid metadata")
	ErrTooLarge     = sentinel.ErrTooLarge // fetch.ErrTooLarge
)

// ErrNotRefreshed is returned by Target and TargetsUnder before a
// successful Refresh.
var ErrNotRefreshed = errors.New("trust: no successful refresh yet")

// SecurityError is a rejected piece of metadata with its evidence. Every
// SecurityError returned by a Client has been reported exactly once, as an
// event.MetadataRejected to Config.Events.
type SecurityError struct {
	Kind     error    // ErrBadSignature, ErrRollback, ErrExpired, ErrMismatch, ErrInvalid or ErrTooLarge
	Role     string   // role whose metadata was rejected
	Expected string   // what trusted metadata required, if applicable
	Got      string   // what was received
	Versions string   // versions involved, e.g. "trusted=5 new=3"
	KeyIDs   []string // key ids involved (signature failures)
	Reason   string   // short explanation
	Err      error    // underlying error, if any
}

func (e *SecurityError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Role, e.Kind)
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Expected != "" || e.Got != "" {
		fmt.Fprintf(&b, " (expected %s, got %s)", e.Expected, e.Got)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the kind and the underlying error.
func (e *SecurityError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func secErr(kind error, role, reason string) *SecurityError {
	return &SecurityError{Kind: kind, Role: role, Reason: reason}
}

func (e *SecurityError) want(expected, got any) *SecurityError {
	e.Expected, e.Got = fmt.Sprint(expected), fmt.Sprint(got)
	return e
}

func (e *SecurityError) wrap(err error) *SecurityError {
	e.Err = err
	return e
}

// kindName is the short name of a rejection kind, the "reason" evidence of
// an event.MetadataRejected.
func kindName(kind error) string {
	switch kind {
	case ErrBadSignature:
		return "bad_signature"
	case ErrRollback:
		return "rollback"
	case ErrExpired:
		return "expired"
	case ErrMismatch:
		return "mismatch"
	case ErrInvalid:
		return "invalid"
	case ErrTooLarge:
		return "too_large"
	}
	return "other"
}

// emitReject emits one event.MetadataRejected for a rejection carried by
// err, if any. It is called once per public call, at its return.
func (c *Client) emitReject(err error) {
	var se *SecurityError
	if !errors.As(err, &se) {
		return
	}
	ev := []string{"role", se.Role, "reason", kindName(se.Kind)}
	for _, kv := range [][2]string{{"expected", se.Expected}, {"got", se.Got}, {"versions", se.Versions}, {"key_ids", strings.Join(se.KeyIDs, ",")}} {
		if kv[1] != "" {
			ev = append(ev, kv[0], kv[1])
		}
	}
	c.ev.Emit(event.MetadataRejected, "", se.Error(), ev...)
}

// emit emits a non-fatal event about role, such as a cached file being
// ignored; cause says why.
func (c *Client) emit(k event.Kind, role, cause string) {
	c.ev.Emit(k, "", cause, "role", role)
}
