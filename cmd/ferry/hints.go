package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/trust"
)

// exitInterrupted is the exit status after SIGINT or SIGTERM stopped a
// command (128 + SIGINT, as shells report it).
const exitInterrupted = 130

// explain returns a hint for an error that carries none of its own: what
// the person at the keyboard can do next. It recognises errors by kind
// (errors.Is and errors.As), never by their text; "" means no hint.
func explain(err error) string {
	var se *trust.SecurityError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	switch {
	case errors.Is(err, repo.ErrNoTrustedRoot):
		return "pass --trusted-root FILE, the root.json your clients ship (or keep the pinned root.json that ferry init " +
			"writes into the offline keys directory, and pass --offline-keys DIR): what the repository holds is checked against it before anything is signed"
	case errors.Is(err, repo.ErrOlderRole):
		return "the server serves an older application role than this pipeline signed last (a restored backup, or a server " +
			"in someone else's hands): find out why before publishing; only if the repository was rebuilt on purpose, remove " +
			"the publisher record named above"
	case errors.Is(err, repo.ErrLowerMin):
		return "if the minimum safe version is meant to go down, pass --lower-min (installations that verified the higher " +
			"minimum keep it; only new ones go lower)"
	case errors.As(err, &unknownCA):
		return "the server's certificate is signed by a CA this machine does not trust: pass --ca FILE with that CA's " +
			"certificate (for ferry serve --self-signed CAFILE, that CAFILE), or check that the URL (--repo or --server) is the server you mean"
	case errors.As(err, &badHost):
		return "the server's certificate is not valid for the host in the URL: use the name or address it was issued for"
	case errors.As(err, &se) && errors.Is(se.Kind, trust.ErrExpired):
		return "the repository's " + se.Role + " metadata has expired: the publisher must run ferry repo refresh --repo DIR " +
			"(ferry serve re-signs it on its schedule when it has FERRY_PASSPHRASE or --passphrase-file); " +
			"if it has not expired, check this machine's clock"
	case errors.As(err, &se) && errors.Is(se.Kind, trust.ErrBadSignature) && (se.Role == "timestamp" || se.Role == "root"):
		return "the server's " + se.Role + " metadata is not signed by the keys of your trusted root: the root (--root) " +
			"belongs to another repository, or the server is not serving the repository you expect; " +
			"compare --root with the publisher's root.json"
	}
	return ""
}

// interrupted reports whether err ended the command because ctx (the
// process's signal context) was cancelled.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err()))
}

// checkRootFile reads a trusted root file given on the command line and
// refuses one that is not JSON with an error that names the file.
func checkRootFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, withHint(fmt.Errorf("trusted root %s is not JSON: %w", name, err),
			"--root takes the root.json that ferry init wrote (DIR/root.json), as the publisher ships it")
	}
	return b, nil
}
