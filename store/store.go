package store

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

// The error contract. Every method returns nil or an error that wraps one
// of these where the caller can act on the condition, and any other error
// (a database that is unreachable, full or corrupt) wrapped with what failed.
var (
	// ErrNotFound: the installation, token, release or rollout named does
	// not exist (for AppendEvents: the installation is not enrolled).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record exists already (an install ID, a token ID or
	// hash), or an event sequence number is stored with another hash.
	ErrConflict = errors.New("conflict")
	// ErrTokenExpired, ErrTokenRevoked and ErrTokenUsedUp: UseToken and
	// Enroll found the token but it may no longer be used.
	ErrTokenExpired = errors.New("token expired")
	ErrTokenRevoked = errors.New("token revoked")
	ErrTokenUsedUp  = errors.New("token used up")
	// ErrInstallationRevoked: Enroll of an install ID revoked on its own
	// (RevokeInstallation), which never enrolls again.
	ErrInstallationRevoked = errors.New("installation revoked")
	// ErrSchemaNewer: Open found a database whose schema a newer ferry
	// wrote; this one does not know it and changes nothing.
	ErrSchemaNewer = errors.New("database schema is newer than this ferry")
)

// Store is the server's state. Implementations are safe for concurrent use
// by many goroutines, and by several processes on one database.
type Store interface {
	Installations
	Events
	Releases
	Tokens
	SecurityEvents
	Plans
	// Close releases the database; the Store is unusable afterwards.
	Close() error
}

// Installations holds the enrolled installations and what each reported
// it runs.
type Installations interface {
	// Enroll records a new installation, using one use of the enrollment
	// token whose hash is tokenHash, in one transaction: either both
	// happen or neither. Errors: ErrNotFound (no enroll token has that
	// hash), ErrTokenExpired, ErrTokenRevoked, ErrTokenUsedUp,
	// ErrConflict (the install ID is enrolled already),
	// ErrInstallationRevoked (it was revoked on its own). An installation
	// whose enrollment token was revoked since enrolls again: the new
	// credential and token replace the old ones (R69).
	Enroll(ctx context.Context, in Installation, tokenHash string) error
	// RevokeInstallation marks an installation revoked at the given time
	// (ErrNotFound if none has that ID): its reports are refused, and
	// Outcomes leaves it out. Revoking it again keeps the first time; it
	// cannot enroll again under its ID.
	RevokeInstallation(ctx context.Context, id string, at time.Time) error
	// Installation returns one installation (ErrNotFound if none).
	Installation(ctx context.Context, id string) (Installation, error)
	// ListInstallations returns the installations, by install ID, with
	// their applications and when they or their enrollment tokens were
	// revoked, revoked ones included. SeenBefore, when set, keeps those
	// last seen before it (the stale ones).
	ListInstallations(ctx context.Context, q InstallationQuery) ([]Installation, error)
	// CountInstallations counts the installations ListInstallations
	// would return without a limit (q.Limit is ignored), in the
	// database: a gauge of the stale ones costs one query, not a listing.
	CountInstallations(ctx context.Context, q InstallationQuery) (int, error)
	// Seen records a check-in: the time, and the version and channel of
	// each application listed (others are left as they are). ErrNotFound
	// if the installation is not enrolled.
	Seen(ctx context.Context, id string, at time.Time, apps []App) error
	// Fleet counts the installations of app by version and channel:
	// those the rollout guard counts (Outcomes), not revoked ones or
	// those of a revoked or another application's enrollment token.
	Fleet(ctx context.Context, app string) ([]FleetCount, error)
}

// Events holds the events installations reported.
type Events interface {
	// AppendEvents stores a batch of events of one installation, keyed
	// by (install ID, Seq), atomically, and returns how many were new:
	// an event already stored with the same Seq and Hash is not stored
	// again (a resent batch counts once). ErrNotFound if the installation
	// is not enrolled; ErrConflict, and nothing stored, if a Seq is
	// stored with another Hash.
	AppendEvents(ctx context.Context, installID string, batch []Event) (added int, err error)
	// Report is AppendEvents and then Seen(installID, at, apps) in one
	// transaction: a batch of an installation and its check-in are stored
	// both or neither (an empty batch is a check-in alone). Errors as
	// AppendEvents's and Seen's.
	Report(ctx context.Context, installID string, batch []Event, at time.Time, apps []App) (added int, err error)
	// QueryEvents returns the events that match q, oldest first (by
	// Time, then install ID, then Seq), at most q.Limit of them.
	QueryEvents(ctx context.Context, q EventQuery) ([]Event, error)
	// RecentEvents returns the events that match q, newest first by the
	// server's clock: q.Since and q.Until select on Received, not on
	// Time (an installation's own clock may say anything), the order is
	// by Received, then install ID, then Seq newest first, at most
	// perInstall of each installation (0: no cap; so one noisy
	// installation cannot push the others out) and at most q.Limit in all.
	RecentEvents(ctx context.Context, q EventQuery, perInstall int) ([]Event, error)
	// ChainHead returns the (Seq, Hash) of the newest event stored for
	// an installation, the end of its audit chain as the server knows it
	// ({0, ""} if it reported nothing yet). ErrNotFound if the
	// installation is not enrolled.
	ChainHead(ctx context.Context, installID string) (Head, error)
	// InstallCounts counts, for one application, the installations that
	// reported installing each version (install.done) in each Step-long
	// interval from Since to Until: the installs over time per version.
	// An installation counts once per version and interval. Intervals
	// without installs are left out; the answer is by Start, then Version.
	InstallCounts(ctx context.Context, q InstallCountQuery) ([]InstallCount, error)
}

// InstallCountQuery selects the intervals of InstallCounts: at most
// MaxInstallSteps of Step from Since to Until.
type InstallCountQuery struct {
	App          string
	Since, Until time.Time
	Step         time.Duration
}

// MaxInstallSteps bounds the intervals of one InstallCounts query.
const MaxInstallSteps = 10000

// InstallCount is how many installations installed Version in the
// interval that begins at Start.
type InstallCount struct {
	Version  string
	Start    time.Time
	Installs int
}

// SecurityEvents holds what the server itself found wrong in what an
// installation reported, such as a batch that contradicts the audit chain
// stored before (R65).
type SecurityEvents interface {
	// RecordSecurity stores one (ErrNotFound if the installation is not
	// enrolled). The same installation, time and kind again is stored once.
	RecordSecurity(ctx context.Context, e SecurityEvent) error
	// ListSecurity returns those of installID ("" for every installation),
	// newest first, at most limit of them (0: DefaultLimit; at most
	// MaxLimit): a limit keeps the latest evidence, not the oldest.
	ListSecurity(ctx context.Context, installID string, limit int) ([]SecurityEvent, error)
}

// Plans holds the plans of guarded rollouts and where each stands, and
// gives the evidence the guard decides on (package guard, R68).
type Plans interface {
	// PutPlan records a release's plan and state, replacing any it had.
	PutPlan(ctx context.Context, p RolloutPlan) error
	// Plan returns a release's plan (ErrNotFound if it has none).
	Plan(ctx context.Context, app, version string) (RolloutPlan, error)
	// ListPlans returns app's plans ("" for every application), by
	// application, then by the time they were made.
	ListPlans(ctx context.Context, app string) ([]RolloutPlan, error)
	// DeletePlan removes a release's plan; removing none is no error.
	DeletePlan(ctx context.Context, app, version string) error
	// Outcomes returns, for one release, one Outcome per installation that
	// reported starting, passing or failing it, by install ID: the times
	// the server first received each (only enrolled installations have
	// events, and each counts once however often it reported). Only
	// installations whose enrollment token is for the release's
	// application (or "*") and is not revoked count (R68, R69).
	Outcomes(ctx context.Context, app, version string) ([]guard.Outcome, error)
}

// RolloutPlan is a release's guarded rollout: its plan, the stage it is
// in, and what the guard last found.
type RolloutPlan struct {
	App, Version string
	Plan         guard.Plan
	Stage        int          // index into Plan.Stages (0 for a plan without stages)
	StageSince   time.Time    // when the stage was signed
	Created      time.Time    // when the plan was given
	Status       guard.Status // the guard's last evaluation; zero Evaluated before the first
}

// SecurityEvent is one security event the server found.
type SecurityEvent struct {
	InstallID string
	Time      time.Time
	Kind      string // "report.log_rewritten"
	Cause     string // what was found, in one line
	Evidence  map[string]string
}

// Releases holds the releases and rollouts as the server last signed
// them, and the counters the events give for each release.
type Releases interface {
	// PutRelease records a release or updates its channel.
	PutRelease(ctx context.Context, r Release) error
	// ListReleases returns app's releases ("" for every application), by
	// application and then by the time they were first recorded.
	ListReleases(ctx context.Context, app string) ([]Release, error)
	// PutRollout records the rollout state of a release (ErrNotFound if
	// the release is not recorded).
	PutRollout(ctx context.Context, r Rollout) error
	// Rollout returns the rollout state of a release (ErrNotFound if none).
	Rollout(ctx context.Context, app, version string) (Rollout, error)
	// ListRollouts returns app's rollouts ("" for every application).
	ListRollouts(ctx context.Context, app string) ([]Rollout, error)
	// ReleaseStats counts, from the stored events, the installations
	// that reported each step for one release: only those the rollout
	// guard counts (Outcomes), as Fleet. A release nobody reported
	// on has zero counts, not ErrNotFound.
	ReleaseStats(ctx context.Context, app, version string) (Stats, error)
}

// Tokens holds the tokens that authenticate publishers and enrollments,
// by the hash of their secret (the secret is never stored).
type Tokens interface {
	// CreateToken stores t (ErrConflict if its ID or Hash is taken).
	CreateToken(ctx context.Context, t Token) error
	// ListTokens returns every token, revoked and expired ones included, by ID.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks a token revoked at the given time (ErrNotFound if
	// no token has that ID). Revoking a revoked token keeps the first time.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// UseToken returns the token of this kind whose hash is hash, and
	// counts one use, if it may be used at now. Errors: ErrNotFound,
	// ErrTokenExpired, ErrTokenRevoked, ErrTokenUsedUp; no use is counted
	// then.
	UseToken(ctx context.Context, kind TokenKind, hash string, now time.Time) (Token, error)
}

// Installation is one enrolled installation (one agent state directory).
type Installation struct {
	ID             string    // the install ID
	CredentialHash string    // SHA-256 (hex) of its per-installation credential
	TokenID        string    // the enrollment token it used
	Enrolled       time.Time // when it enrolled
	LastSeen       time.Time // its last check-in (Enrolled until the first)
	Apps           []App     // what it last reported it runs, by application

	// Set by Installation only: what its enrollment token allows now.
	// Its reports are about TokenScope's application alone (or any,
	// for "*"), and none is taken once the token is revoked (R68, R69).
	TokenScope string
	// Set by Installation and ListInstallations: when its enrollment
	// token, and the installation itself (RevokeInstallation), were
	// revoked; zero: not revoked.
	TokenRevoked time.Time
	Revoked      time.Time
}

// App is what an installation runs of one application.
type App struct {
	App     string
	Version string // "" if nothing is installed yet
	Channel string
	Updated time.Time // when the installation reported it (set by Seen)
}

// InstallationQuery selects installations; the zero value selects all.
type InstallationQuery struct {
	SeenBefore time.Time // if set: last seen before this time
	// TokenID, if set: enrolled with this enrollment token and not revoked
	// on their own (the installations that revoking the token cuts off).
	TokenID string
	Limit   int // at most this many (0: DefaultLimit)
}

// FleetCount is how many installations run one version in one channel.
type FleetCount struct {
	Version, Channel string
	Installations    int
}

// Event is one event an installation reported, with its place in the
// installation's audit chain.
type Event struct {
	InstallID string    // set by the store from AppendEvents' argument
	Seq       uint64    // its audit-log sequence number, >= 1
	Prev      string    // the hash of the line before it in the audit log
	Hash      string    // the hash of its own audit-log line
	Received  time.Time // when the server received it (AppendEvents' caller sets it)
	event.Event
}

// EventQuery selects events; zero fields select everything.
type EventQuery struct {
	InstallID string
	App       string
	Version   string
	Kinds     []event.Kind // any of these
	Since     time.Time    // Time at or after
	Until     time.Time    // Time before
	Limit     int          // at most this many (0: DefaultLimit; at most MaxLimit)
}

// DefaultLimit is the number of rows a query returns when it names no
// limit; MaxLimit is the most it returns.
const (
	DefaultLimit = 1000
	MaxLimit     = 100000
)

// Head is the end of an installation's audit chain as the server knows it.
type Head struct {
	Seq  uint64
	Hash string
}

// Release is one version of one application the server published.
type Release struct {
	App, Version, Channel string
	Created               time.Time
}

// Rollout is the rollout state of one release as the server last signed it.
type Rollout struct {
	App, Version string
	BasisPoints  int           // share offered, 0..rollout.Full
	State        rollout.State // active, halted or pulled
	Salt         string
	Reason       string // why it is in this state ("halted: failure budget 5% crossed")
	Updated      time.Time
}

// Stats are, for one release, the number of distinct installations that
// reported each step of it.
type Stats struct {
	// Started are the installations that reported starting it or any
	// later step (an install.started may be lost): the Started of the
	// guard's evidence (guard.Status), so that both count the same.
	Started    int
	Installed  int // install.done
	Healthy    int // health.passed
	Failed     int // health.failed, install.failed or install.rollback_failed
	RolledBack int // install.rolled_back
}

// TokenKind says what a token may do.
type TokenKind string

const (
	Publisher TokenKind = "publisher" // the admin API, for one application (Scope)
	Enroll    TokenKind = "enroll"    // enrolling installations (Scope names what it may enroll for)
)

// Token is one stored token: its hash, never the secret.
type Token struct {
	ID      string
	Kind    TokenKind
	Scope   string // an application, or "*"
	Hash    string // SHA-256 (hex) of the secret
	Created time.Time
	Expires time.Time // zero: never
	Revoked time.Time // zero: not revoked
	Uses    int       // how many times UseToken or Enroll accepted it
	MaxUses int       // 0: no limit
}
