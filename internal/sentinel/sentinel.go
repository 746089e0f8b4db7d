// Package sentinel defines, once, the error conditions that several ferry
// packages report and that callers branch on with errors.Is. The public
// packages re-export them (fetch.ErrNotFound and trust.ErrNotFound are the
// same value, as are install.ErrBusy, repo.ErrBusy and client.ErrBusy), so
// a caller can test an error with the sentinel of any package it imports,
// whichever package wrapped it. Each message is the bare condition; the
// error that wraps it says what and where.
package sentinel

import "errors"

var (
	// ErrNotFound: the file, target or role asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: more bytes than a limit or a signed length allows.
	ErrTooLarge = errors.New("too large")
	// ErrBusy: another process or goroutine holds the lock of the same
	// state, installation or repository.
	ErrBusy = errors.New("busy")
	// ErrRefused: a policy refused the request (a URL, a redirect, an
	// encoding, a release that may not be taken, an upload that does not
	// satisfy its delegation).
	ErrRefused = errors.New("refused")
)
