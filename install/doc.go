// Package install turns a verified download into the running version, and
// makes sure that a crash, a full disk or a broken release never leaves a
// machine without a working one.
//
// Two strategies share one state machine:
//
//   - Binary replaces one executable (the running program for self-update,
//     or any other path) by renaming a verified staging file over it; the
//     old executable is kept as .NAME.ferry-old for rollback.
//   - Slots unpacks each version into ROOT/APP/versions/VERSION and swaps the
//     symlink ROOT/APP/current; it keeps the last Keep versions.
//
// # Guarantees
//
// The installer takes an Artifact: the local file and the signed length and
// hashes. It re-verifies the bytes it actually installs, as it copies them
// out of the open file (R36); archives are copied and verified before a
// single byte reaches a decompressor (R39), then unpacked under os.Root with
// only regular files and directories allowed and limits on size, entry count
// and compression ratio (R35, R41). A mismatch is an error wrapping ErrVerify
// with the evidence in a *VerifyError, and nothing changes.
//
// Every durable step is fsync, rename, fsync of the directory. The state of
// each application (state.json: installed, previous and pending versions,
// versions marked bad, a failed rollback) is replaced atomically and carries
// a checksum, with a second copy written before it; a torn or corrupt file is
// moved aside and replaced by its copy, and only when both are unusable is
// the state rebuilt from what is on disk and marked Lost (R52). The pending version is recorded before the swap and its
// trial counter before each health trial, so Recover, run at start, always
// finds out whether a crash happened before or after the swap and finishes
// or undoes it: the old or the new version is live, never neither (R42, R43).
//
// With a Health check (a command that must exit 0 and/or a URL that must
// answer 2xx, with a deadline and retries), a new version that fails, hangs
// or crash-loops is rolled back, marked bad so it is not installed again,
// and the reason recorded (R44); the error wraps ErrRolledBack. A rollback
// that itself fails returns a *RollbackError and stays pending so the next
// Recover retries it (R45).
//
// A live program that ferry did not install is adopted as the installed
// version (version unknown) before the first install's intent, so it is
// what a rollback restores. Slots.ApplyAll installs every artifact of one
// release into one slot, or none (R47). A health command's exit status is
// all that counts; its output is never parsed, and no command runs through
// a shell (R37).
//
// Going back: Apply of an older version works like any install (the
// client decides when a downgrade is wanted: only after a signed pull).
// Revert (the Reverter interface) switches to a version still on disk
// without a download, after checking that copy against the signed hashes,
// through the same journal, trial and rollback as Apply; ErrNotOnDisk means
// there is no such copy and nothing changed.
//
// Every step emits one typed event (package event) to Binary.Events or
// Slots.Events: install.started, install.swapped, health.passed or
// health.failed, install.done, install.rolled_back, and so on; Result.Failed
// and Result.Detail say which step of a trial failed, so that no caller
// parses Result.Reason. A cancelled context is safe at every step: before
// the intent nothing changes, after it the journal resumes at Recover, and
// a rollback always runs to its end.
//
// One install per application at a time: a second caller gets ErrBusy (R50);
// Binary also locks next to Target, so installers of one Target with
// different state directories are serialized too.
// A Binary or Slots value is not safe for concurrent use; separate values
// (even in separate processes) are serialized by the lock.
//
// docs/install.md describes the state file, the recovery rules and the
// limits.
package install
