// Package event is ferry's one vocabulary for what happened during an
// update: every step of check, download, verify, install, health check and
// rollback is reported as one Event through an Observer. The client, the
// trust core, the installer, the agent and the command all emit events of
// this type, and everything that watches them (the -v log, the agent's
// status, later the audit log, the fleet reporter and metrics) is an
// Observer.
//
// It is pure and tiny: no I/O except in the Slog observer, no global state.
// An Observer must be safe for concurrent use and must not block for long:
// it is called synchronously from the step that emits the event.
package event

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Kind names what happened. Kinds are stable identifiers: they appear in
// logs, in the agent's status, in --json output and (later) in the audit
// log, so a kind is never renamed, only added.
type Kind string

// The kinds. A Security kind (see Kind.Security) is a refusal of something
// that failed verification: the evidence says what and why.
const (
	// Checks and selection.
	CheckStarted  Kind = "check.started"  // a check of App began
	CheckUpToDate Kind = "check.uptodate" // nothing to install; Cause says why (newest, not in cohort, halted)
	CheckOffered  Kind = "check.offered"  // Version is offered to this installation
	CheckFailed   Kind = "check.failed"   // the check failed (network, metadata); Cause is the error
	MirrorFailed  Kind = "mirror.failed"  // one mirror failed; the next is tried

	// Metadata (trust core).
	MetadataRejected    Kind = "metadata.rejected"              // security: metadata refused (signature, rollback, expiry, mismatch, invalid, too large)
	MetadataCacheIgnore Kind = "metadata.cache_ignore"          // a cached file did not verify and was set aside (an older version superseded by a publish is not reported)
	MetadataCacheReload Kind = "metadata.cache_reload"          // cached metadata set aside at start verified by a root reached in this refresh
	MetadataRecovered   Kind = "metadata.fast_forward_recovery" // keys rotated: trusted metadata they no longer sign forgotten (TUF 5.3.11)
	DelegationLimit     Kind = "metadata.delegation_limit"      // a lookup gave up after the maximum number of delegated roles

	// Releases and their files.
	ReleaseRefused Kind = "release.refused" // security: a signed target that is not a release this client may take
	ReleaseMixed   Kind = "release.mixed"   // security: a release's files disagree with its signed manifest (R48)
	FileIgnored    Kind = "release.file_ignored"

	// Downloads.
	DownloadStarted  Kind = "download.started"
	DownloadDone     Kind = "download.done"     // verified: length and hashes match the signed target
	DownloadRejected Kind = "download.rejected" // security: length or hash mismatch, refused encoding
	CacheRejected    Kind = "download.cache_rejected"
	StagingRefused   Kind = "staging.refused" // security: a staging or download directory others can use (R51)

	// Install, health, rollback.
	InstallStarted   Kind = "install.started"
	InstallDone      Kind = "install.done" // committed: Version is installed and healthy
	InstallUnchanged Kind = "install.unchanged"
	HealthPassed     Kind = "health.passed"
	HealthFailed     Kind = "health.failed"
	RolledBack       Kind = "install.rolled_back" // Version failed; the previous version runs again
	RollbackFailed   Kind = "install.rollback_failed"
	Recovered        Kind = "install.recovered"     // an install a crash interrupted was finished or rolled back
	InstallRejected  Kind = "install.rejected"      // security: the bytes the installer copied do not match the signed length and hashes, or an archive entry was refused
	InstallFailed    Kind = "install.failed"        // the install stopped with an error (Cause); what was live stays live or is recovered
	Adopted          Kind = "install.adopted"       // a live program ferry did not install is recorded as the installed version
	Swapped          Kind = "install.swapped"       // Version is live; its trial follows
	NotOnDisk        Kind = "install.not_on_disk"   // a revert found no verified copy of Version on disk; the caller downloads it
	StateCorrupt     Kind = "install.state_corrupt" // the install state file was unusable; its copy was used
	StateLost        Kind = "install.state_lost"    // the install state file and its copy were unusable: rebuilt from disk (R52)

	// Rollout decisions as this installation sees them.
	Pulled   Kind = "rollout.pulled"    // the installed version was pulled; moving to Evidence["to"]
	BelowMin Kind = "rollout.below_min" // the installed version is below the signed minimum safe version
	// MinLowered: the signed minimum safe version (Evidence["signed"]) is
	// below one this installation verified before (Evidence["kept"]),
	// which stays the minimum (R63).
	MinLowered Kind = "rollout.min_lowered"
	Stale      Kind = "refresh.stale" // no successful refresh for longer than the configured limit (R15)
	Refreshed  Kind = "refresh.done"  // metadata refreshed; Evidence["changed"] is "true" or "false"

	// The agent.
	InstallDeferred Kind = "install.deferred" // Version is downloaded and verified; it installs when the maintenance window opens (Evidence["opens"])
	AgentStarted    Kind = "agent.started"
	AgentStopping   Kind = "agent.stopping" // SIGTERM or SIGINT: nothing new starts; a running install finishes first
	AgentReexec     Kind = "agent.reexec"   // the agent's own new version (Version) starts in place of this process
)

// Security reports whether k is a refusal of something that failed
// verification (what an operator alerts on).
func (k Kind) Security() bool { return slices.Contains(securityKinds, k) }

// securityKinds are the kinds Security reports.
var securityKinds = []Kind{MetadataRejected, ReleaseRefused, ReleaseMixed, DownloadRejected, StagingRefused, InstallRejected, MinLowered}

// SecurityKinds returns every kind Security reports, for queries that
// select them (the dashboard's security events).
func SecurityKinds() []Kind { return slices.Clone(securityKinds) }

// Event is one thing that happened.
type Event struct {
	Time    time.Time
	Kind    Kind
	App     string // application, "" for repository-wide events (metadata)
	Version string // the version concerned, if any
	// Cause says why, in one line a person can act on ("" when there is
	// nothing to say): the error text, or the reason for a decision.
	Cause string
	// Evidence are the facts behind the event, for logs and reports:
	// "role", "target", "expected_sha256", "got_sha256", "key_id",
	// "mirror", "from", "to", "bucket", "basis_points". Keys are short
	// snake_case words; values are strings.
	Evidence map[string]string
}

// Observer receives events. Implementations must be safe for concurrent use.
type Observer interface {
	Observe(Event)
}

// Func adapts a function to an Observer.
type Func func(Event)

// Observe calls f(e).
func (f Func) Observe(e Event) { f(e) }

// Discard is an Observer that drops every event.
var Discard Observer = Func(func(Event) {})

// Or returns o, or Discard when o is nil.
func Or(o Observer) Observer {
	if o == nil {
		return Discard
	}
	return o
}

// Tee returns an Observer that passes each event to every non-nil observer, in order.
func Tee(obs ...Observer) Observer {
	var out []Observer
	for _, o := range obs {
		if o != nil {
			out = append(out, o)
		}
	}
	return Func(func(e Event) {
		for _, o := range out {
			o.Observe(e)
		}
	})
}

// Emitter stamps events with a clock and an application and passes them
// on. The zero value drops events. It is safe for concurrent use.
type Emitter struct {
	Observer Observer
	Now      func() time.Time
	App      string
}

// Emit sends one event. ev may be nil; pairs of strings become Evidence.
func (m Emitter) Emit(k Kind, version, cause string, ev ...string) {
	if m.Observer == nil {
		return
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	e := Event{Time: now(), Kind: k, App: m.App, Version: version, Cause: cause}
	if len(ev) > 0 {
		e.Evidence = make(map[string]string, len(ev)/2)
		for i := 0; i+1 < len(ev); i += 2 {
			e.Evidence[ev[i]] = ev[i+1]
		}
	}
	m.Observer.Observe(e)
}

// For returns a copy of m for another application.
func (m Emitter) For(app string) Emitter { m.App = app; return m }

// Slog returns an Observer that writes each event to l as one record: the
// message is the kind, attributes are app, version, cause and the evidence
// (sorted by key). Security kinds are logged at Warn, failures of a step
// at Warn, everything else at Info.
func Slog(l *slog.Logger) Observer {
	if l == nil {
		return Discard
	}
	return Func(func(e Event) {
		attrs := []slog.Attr{slog.String("event", string(e.Kind))}
		if e.App != "" {
			attrs = append(attrs, slog.String("app", e.App))
		}
		if e.Version != "" {
			attrs = append(attrs, slog.String("version", e.Version))
		}
		if e.Cause != "" {
			attrs = append(attrs, slog.String("cause", e.Cause))
		}
		for _, k := range slices.Sorted(maps.Keys(e.Evidence)) {
			attrs = append(attrs, slog.String(k, e.Evidence[k]))
		}
		l.LogAttrs(context.Background(), level(e.Kind), string(e.Kind), attrs...)
	})
}

func level(k Kind) slog.Level {
	switch {
	case k.Security():
		return slog.LevelWarn
	case k == CheckFailed, k == MirrorFailed, k == HealthFailed, k == RolledBack, k == RollbackFailed, k == Stale, k == MetadataCacheIgnore,
		k == MetadataRecovered, k == DelegationLimit,
		k == InstallFailed, k == StateCorrupt, k == StateLost:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// Recorder is an Observer that keeps every event in memory, for tests and
// for a caller that inspects what one call did. It is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Observe records e.
func (r *Recorder) Observe(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of the events recorded so far, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Kinds returns the kinds recorded so far, in order.
func (r *Recorder) Kinds() []Kind {
	var out []Kind
	for _, e := range r.Events() {
		out = append(out, e.Kind)
	}
	return out
}
