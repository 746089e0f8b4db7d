// Package audit keeps ferry's tamper-evident record of what happened on one
// installation: every event (package event) is appended to a file as one
// JSON line that carries a sequence number and the SHA-256 of the line
// before it, so that an edit, a deletion, an insertion, a reordering or a
// re-sealing of the lines is found by Verify, which names the first line
// where the chain breaks. docs/audit.md is the user's description.
//
// # Format (version 1)
//
// A log is a sequence of lines, each terminated by "\n" and at most MaxLine
// bytes long, each the JSON object
//
//	{"seq":N,"prev":"HEX","time":"RFC3339","kind":"K","app":"A","version":"V","cause":"C","evidence":{"k":"v"}}
//
// with exactly these fields, in this order, as encoding/json writes a
// Record (evidence is left out when empty; time is UTC). A line that is
// not the canonical encoding of its own content is refused, so one line
// has exactly one meaning. seq is 1 on the first line ever written and
// grows by one per line; prev is the lowercase hex SHA-256 of the bytes of
// the previous line (without its "\n"), and the first line's prev is
// Genesis, 64 zeros. The hash of a line is the same SHA-256 of its bytes.
// A State (seq, hash) names the end of a chain: the last line's seq and
// hash, or (0, Genesis) for an empty log.
//
// # Rotation
//
// When the file would grow past its size bound, Log renames it FILE.1
// (FILE.1 becomes FILE.2 and so on, the oldest beyond the kept count is
// removed) and starts a new FILE whose first line simply continues the
// chain: its seq follows the last line of FILE.1 and its prev is that
// line's hash. Verifying FILE.2, FILE.1 and FILE in order checks the whole
// chain across them; verifying FILE alone starts from the seq and prev
// its first line carries (they can only be checked against FILE.1).
//
// # What the chain proves, and what it does not
//
// Verify finds any change to any line but the last: changing a line
// changes its hash, which the next line's prev no longer matches. Hiding
// an edit by rewriting the next line's prev ("re-sealing") changes that
// line in turn, which the line after it catches. What a local attacker who
// can write the file can do is rewrite the whole tail: edit or drop the
// last lines and recompute every later prev, which leaves a chain that
// verifies on its own. A hash chain cannot prevent that; a witness can
// catch it. So the reporter sends the server the last State of its log
// (issue 9), the server keeps the last State each installation reported,
// and VerifyKnown checks a log against it: a log whose line at the
// reported seq has another hash, or that ends before it, was rewritten or
// truncated. Changes after the last reported State stay undetectable until
// the next report.
//
// # Concurrency and durability
//
// A *Log is safe for concurrent use and is the only writer of its file
// (Open takes FILE.lock). Each Observe writes one line and fsyncs the file
// before it returns, so a crash loses at most the line being written: Open
// finds such a torn last line, cuts it off and records the repair as an
// "audit.repaired" line. Verify and VerifyKnown are pure functions of their
// input.
package audit
