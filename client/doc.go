// Package client is the library an application embeds to update itself,
// and the one an agent uses to keep many applications up to date.
//
// A Repository is the client of one repository, safe for concurrent use:
// Refresh brings the trusted metadata up to date once for every
// application, and Check and Update take the application as an App (name,
// platform, channel, installed version, install ID) and decide on that
// trusted state, fetching nothing else but delegated roles not loaded yet.
// A Client is a Repository with one App, for the simple embedding path:
// Check finds the release to install, Download fetches and verifies it,
// and Update does both and installs the result with an Installer (package
// install's Binary or Slots). SelfUpdate replaces the running program and
// re-executes it.
//
// # Staged rollouts
//
// Which release an installation gets is decided by rollout.Choose over the
// releases the application's key signed, with the rollout decisions the
// rollout role signs (target rollout.DocPath(APP); none: every release is
// in channel stable at 100%) and the minimum safe version the
// application's key signs (target rollout.PolicyPath(APP), skipped when
// listing releases). The installation's cohort comes from its install ID
// (InstallID: one per state directory). A rollout decision can only choose
// among signed releases (R61), a replayed older one is refused like any
// TUF rollback (R62), nothing below the minimum is offered (R63), and the
// only downgrade is to the newest good release after a signed pull of the
// installed one (R49). A release whose files disagree with their signed
// manifest is refused (release.mixed, R48).
//
// # Guarantees
//
// A Client never returns or writes anything that the repository's TUF keys
// did not sign. New refuses a Config without a trusted root (there is no way
// to skip verification), and every URL must be https (plain http only to a
// loopback address with InsecureAllowHTTPLoopback, for tests).
//
// Client.Check refreshes TUF metadata (root chain, timestamp, snapshot,
// targets and the application's delegated role, through package trust)
// and returns the release the rollout decisions offer for Config.App and
// Config.Platform (without decisions: the newest strictly above
// Config.Installed), or nil. A target counts as a release of the application
// only if its path has the form APP/VERSION/OS-ARCH/FILE and its signed
// custom metadata
//
//	{"ferry": {"app": APP, "version": VERSION, "platform": "OS/ARCH", "kind": KIND}}
//
// agrees with that path and with the configured application and platform,
// all as package release defines them: VERSION is strict semver without a
// "v" and without +build metadata (Config.Installed too; New refuses
// another). A target of the application that is not such a release is
// skipped and reported as a release.refused event, never offered.
// Pre-release versions (1.5.0-rc.1) are offered only with
// Config.Prerelease.
//
// nil means up to date, and only that: an application the repository has
// never published (a typo) or a platform with no release of it at all is an
// error wrapping a *NotPublishedError (ErrUnknownApp or ErrUnknownPlatform)
// that lists the applications, or the platforms, the repository has. When one version has several files for the
// platform, Check picks the one whose FILE name sorts first (byte order), so
// the choice is the same on every client.
//
// Download re-resolves the release's path through trusted metadata (the
// caller's Length and Hashes are never used), refuses anything that Check
// would not offer (another application, another platform, a version not above
// Installed unless a signed pull led there; the error wraps ErrRefused), downloads into StateDir/downloads/SHA256HEX (resuming a partial
// file with an HTTP Range request), verifies the length and every known hash
// of the whole file, and only then moves it into the destination directory.
// A complete file already in the download cache is re-verified before use and
// downloaded again if it does not match.
//
// # Installing
//
// Update asks the installer for its state first (which finishes or rolls
// back an install a crash interrupted), takes the higher of
// Config.Installed and the installer's recorded version as the installed
// one, and passes over every version the installer marked bad on this
// machine: a release that failed its health check here is never retried,
// but a newer release is (Outcome.Skipped lists what was passed over). The
// release is downloaded into a private directory under StateDir/staging,
// and the installer gets the signed length and hashes, never ones computed
// from the file: it re-verifies the bytes it installs (R36). Nothing is
// downloaded or installed when there is no newer release, and nothing is
// installed while a failed rollback waits for a human (R45).
//
// # Mirrors
//
// Config.URLs are tried in order. A mirror that fails, with a transport error
// or with metadata or bytes that fail verification, is recorded in a
// *MirrorError and the next one is tried; checks are the same on every
// mirror. An operation fails only when every mirror failed, and its error
// joins each mirror's error.
//
// # Events
//
// Every step is reported as one event (package event) to
// RepositoryConfig.Events (Config.Events, or Config.Log through
// event.Slog): check.started, then check.offered or check.uptodate (Cause:
// the rollout decision's reason) or check.failed; rollout.pulled and
// rollout.below_min; download.started and download.done; and every
// rejection once: metadata.rejected (reported by package trust, with role,
// reason, expected, got and key ids), mirror.failed, download.rejected,
// download.cache_rejected, release.refused, release.mixed and
// staging.refused.
//
// # Layout
//
// A mirror at BASE/ serves BASE/metadata/N.ROLE.json and timestamp.json, and
// BASE/targets/APP/VERSION/OS-ARCH/SHA256HEX.FILE (consistent snapshots; see
// package repo). The state directory holds metadata/ (trusted metadata, see
// internal/metastore), downloads/ (partial and verified downloads) and
// staging/ (Update's private hand-over to the installer), all 0700;
// SelfUpdate keeps the installer's state in install/. New refuses a state
// directory, or any of these, that is a symlink, belongs to another user
// or that group or others may write (R70).
//
// A Client is not safe for concurrent use; a Repository is. Every
// operation holds the lock StateDir/client.lock while it runs (a
// Repository's concurrent operations share it), so two clients or
// repositories (in one process or two) that share a StateDir never
// interleave: the second gets an error wrapping ErrBusy that names the
// directory and the holder's pid. The state directory also holds the
// install ID (install-id).
package client
