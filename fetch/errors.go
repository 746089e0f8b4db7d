package fetch

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ferry-updates/ferry/internal/sentinel"
)

// Conditions callers branch on, with errors.Is.
var (
	// ErrNotFound is wrapped by errors for a 404 response. It is
	// trust.ErrNotFound (one value, see internal/sentinel).
	ErrNotFound = sentinel.ErrNotFound
	// ErrRefused: the URL, a redirect or the response's encoding breaks
	// the transport policy (not https, another host, too many redirects,
	// a compressed body). It is client.ErrRefused.
	ErrRefused = sentinel.ErrRefused
	// ErrTooLarge: the body is longer than the limit or the signed length.
	// It is trust.ErrTooLarge.
	ErrTooLarge = sentinel.ErrTooLarge
	// ErrTooSlow: fewer bytes than the minimum rate arrived in a window.
	ErrTooSlow = errors.New("too slow")
	// ErrTimeout: the overall deadline of a request passed.
	ErrTimeout = errors.New("timeout")
	// ErrMismatch: a downloaded file's length or hash is not the expected one.
	ErrMismatch = errors.New("mismatch")
)

// StatusError is an HTTP response with a status other than the one
// expected. A 404 also matches ErrNotFound.
type StatusError struct {
	Code   int
	Status string // as sent, for example "503 Service Unavailable"
}

func (e *StatusError) Error() string { return "unexpected status " + e.Status }

// Unwrap makes a 404 match ErrNotFound.
func (e *StatusError) Unwrap() error {
	if e.Code == 404 {
		return ErrNotFound
	}
	return nil
}

// MismatchError is the evidence of a download that is not what was
// expected: What is "length" or a hash algorithm name.
type MismatchError struct {
	What      string
	Want, Got string // decimal lengths or hex digests
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s mismatch: want %s, got %s", e.What, e.Want, e.Got)
}

// Unwrap makes every MismatchError match ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

func hashMismatch(alg string, want, got []byte) error {
	return &MismatchError{What: alg, Want: hex.EncodeToString(want), Got: hex.EncodeToString(got)}
}
