package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// jsonHelp is the paragraph on --json in the help of the commands that
// have it; docs/json.md describes every object.
const jsonHelp = `With --json, each result is printed as one JSON object on a line of its own (JSON Lines) instead
of text, for scripts; docs/json.md describes the objects. Errors still go to stderr as text, and
the exit status is the same.`

// updateResult is one result of ferry update --json (docs/json.md).
type updateResult struct {
	App string `json:"app"`
	// Status: "updated", "up-to-date", "already-installed", "rolled-back"
	// (the new version failed its health check), "recovered" (an install
	// that a crash interrupted was rolled back) or "skipped" (a release
	// marked bad on this machine).
	Status  string `json:"status"`
	From    string `json:"from,omitempty"`    // version before the update, if known
	Version string `json:"version"`           // the version this result is about
	Failed  string `json:"failed,omitempty"`  // rolled-back: the version that failed, now marked bad
	Path    string `json:"path,omitempty"`    // updated: where the verified file or install is
	SHA256  string `json:"sha256,omitempty"`  // updated with --out: the file's full SHA-256
	Reason  string `json:"reason,omitempty"`  // rolled-back, recovered, skipped: why; updated, up-to-date: the rollout decision's reason
	Channel string `json:"channel,omitempty"` // updated, up-to-date, already-installed: the channel followed
	// Held: up-to-date, the newest signed version the rollout holds back
	// from this installation (its cohort, channel, a halt, a pull).
	Held      string `json:"held,omitempty"`
	Downgrade bool   `json:"downgrade,omitempty"` // updated: to an older version, after a signed pull
}

// releaseJSON is one line of ferry release list --json.
type releaseJSON struct {
	App      string `json:"app"`
	Version  string `json:"version"`
	Platform string `json:"platform"`
	Kind     string `json:"kind"`
	Length   int64  `json:"length"`
	SHA256   string `json:"sha256"`
	Path     string `json:"path"`
}

// keyJSON is one line of ferry key list --json.
type keyJSON struct {
	Role      string `json:"role"`
	Threshold int    `json:"threshold"`
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	KeyFile   string `json:"key_file"`
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// result prints r as a JSON line when asJSON, else the text line.
func (e *env) result(asJSON bool, r updateResult, format string, args ...any) {
	if asJSON {
		writeJSONLine(e.stdout, r)
		return
	}
	fmt.Fprintf(e.stdout, format, args...)
}
