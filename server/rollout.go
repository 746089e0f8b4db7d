package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// The rollout endpoints of the admin API:
//
//	GET  /api/v1/apps/{app}/rollout   the application's rollout status: every
//	                                  signed version with its decision, and the
//	                                  minimum safe version (RolloutStatus)
//	POST /api/v1/apps/{app}/rollout   application/json RolloutRequest, at most
//	                                  MaxRolloutRequest bytes: one decision,
//	                                  signed with the server's online rollout
//	                                  key; answer {"version","entry"}
//
// A decision about a version the application key did not sign, or below
// the signed minimum safe version, is refused with 422 and changes nothing;
// a malformed request is 400, an oversized one 413.

// MaxRolloutRequest bounds the body of a rollout decision.
const MaxRolloutRequest = 4 << 10

// Rollouter is the rollout side of the repository behind the admin API;
// *repo.Repo is one. Rollout's refusals (a version the application key did
// not sign, one below the minimum safe version, an invalid action) wrap
// repo.ErrRefused.
type Rollouter interface {
	Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error)
	Rollouts(app string) (*rollout.Doc, error)
	MinVersion(app string) (string, error)
	List(ctx context.Context) ([]repo.Entry, error)
}

// RolloutRequest is the body of POST /api/v1/apps/{app}/rollout. Action is
// start, halt, resume, pull or promote; BasisPoints is the share for start
// (500 = 5%); Channel the channel for promote (and, optionally, start).
// Plan, with start only, makes it a guarded rollout (Guard.Decide): its
// first stage must be BasisPoints; durations are in nanoseconds.
type RolloutRequest struct {
	Action      string      `json:"action"`
	Version     string      `json:"version"`
	BasisPoints int         `json:"basis_points"`
	Channel     string      `json:"channel"`
	Plan        *guard.Plan `json:"plan,omitempty"`
}

// RolloutAnswer is the answer to a decision: the version's new entry.
type RolloutAnswer struct {
	Version string        `json:"version"`
	Entry   rollout.Entry `json:"entry"`
}

// RolloutStatus is an application's rollout status: what GET
// /api/v1/apps/{app}/rollout answers and ferry rollout status --json prints.
type RolloutStatus struct {
	App        string           `json:"app"`
	MinVersion string           `json:"min_version"` // "" when none is signed
	Releases   []ReleaseRollout `json:"releases"`    // newest first
}

// ReleaseRollout is one signed version and its decision. Decided is false
// for a version no decision names: it is in the stable channel, active, at
// 100% (and has no salt).
type ReleaseRollout struct {
	Version string `json:"version"`
	rollout.Entry
	Decided bool `json:"decided"`
	// BelowMin is set for a version below the minimum safe version: no
	// installation is offered it, whatever its entry says.
	BelowMin bool `json:"below_min"`
	// Guard is what the server's guard last found, for a release with a
	// plan (a guarded rollout); absent otherwise.
	Guard *guard.Status `json:"guard,omitempty"`
}

// NewRolloutStatus is the status of app from its decisions, its minimum
// safe version and its published targets (the versions the application
// key signed). A decision about a version that is not signed is left out.
func NewRolloutStatus(app string, doc *rollout.Doc, min string, entries []repo.Entry) RolloutStatus {
	st := RolloutStatus{App: app, MinVersion: min, Releases: []ReleaseRollout{}}
	versions := signedVersions(app, entries)
	slices.SortFunc(versions, func(a, b string) int { return release.CompareVersions(b, a) })
	for _, v := range versions {
		r := ReleaseRollout{Version: v, Entry: rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Active}}
		if doc != nil {
			if e, ok := doc.Releases[v]; ok {
				r.Entry, r.Decided = e, true
			}
		}
		r.BelowMin = min != "" && release.CompareVersions(v, min) < 0
		st.Releases = append(st.Releases, r)
	}
	return st
}

// RolloutStatusOf reads app's rollout status from r.
func RolloutStatusOf(ctx context.Context, r Rollouter, app string) (RolloutStatus, error) {
	doc, err := r.Rollouts(app)
	if err != nil {
		return RolloutStatus{}, err
	}
	min, err := r.MinVersion(app)
	if err != nil {
		return RolloutStatus{}, err
	}
	entries, err := r.List(ctx)
	if err != nil {
		return RolloutStatus{}, err
	}
	return NewRolloutStatus(app, doc, min, entries), nil
}

func (a *admin) rolloutStatus(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	st, err := RolloutStatusOf(r.Context(), a.cfg.Repo, app)
	if err == nil && a.cfg.Guard != nil {
		err = a.cfg.Guard.attach(r.Context(), &st)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// rolloutDecide is POST /api/v1/apps/{app}/rollout.
func (a *admin) rolloutDecide(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	req, err := readRolloutRequest(w, r)
	if err != nil {
		if statusOf(err) == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close")
		}
		a.fail(w, r, err)
		return
	}
	act := rollout.Action{Kind: req.Action, Version: req.Version, BasisPoints: req.BasisPoints, Channel: req.Channel}
	var entry rollout.Entry
	switch {
	case a.cfg.Guard != nil:
		entry, err = a.cfg.Guard.Decide(r.Context(), app, act, req.Plan)
	case req.Plan != nil:
		err = fmt.Errorf("%w: rollout request: this server has no guard to keep a plan", errBadRequest)
	default:
		a.mu.Lock() // one signing at a time, with the uploads
		entry, err = Decide(r.Context(), a.cfg.Repo, app, act)
		a.mu.Unlock()
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tok, _ := r.Context().Value(tokenKey{}).(Token)
	attrs := []any{"app", app, "action", req.Action, "version", req.Version,
		"channel", entry.Channel, "basis_points", entry.BasisPoints, "state", string(entry.State),
		"token", tok.ID, "remote", clientIP(r)}
	if req.Plan != nil {
		attrs = append(attrs, "stages", guard.FormatStages(req.Plan.Stages), "budget_bp", req.Plan.Budget)
	}
	a.log.Info("admin: rollout", attrs...)
	writeJSON(w, http.StatusOK, RolloutAnswer{Version: req.Version, Entry: entry})
}

// Decide checks act against app's current decisions, signed versions and
// minimum safe version, as the repository will, then has ro sign it. A
// decision rollout.Doc.Apply refuses (R61, R63, a pulled release halted)
// wraps repo.ErrRefused, and the admin API answers it 422 with the reason.
func Decide(ctx context.Context, ro Rollouter, app string, act rollout.Action) (rollout.Entry, error) {
	doc, err := ro.Rollouts(app)
	if err != nil {
		return rollout.Entry{}, err
	}
	min, err := ro.MinVersion(app)
	if err != nil {
		return rollout.Entry{}, err
	}
	entries, err := ro.List(ctx)
	if err != nil {
		return rollout.Entry{}, err
	}
	if doc == nil {
		doc = &rollout.Doc{App: app}
	}
	if _, err := doc.Apply(act, signedVersions(app, entries), min); err != nil {
		return rollout.Entry{}, fmt.Errorf("%w: %w", repo.ErrRefused, err)
	}
	return ro.Rollout(ctx, app, act)
}

// signedVersions are the versions of app among entries.
func signedVersions(app string, entries []repo.Entry) []string {
	var out []string
	for _, e := range entries {
		if e.App == app && !slices.Contains(out, e.Version) {
			out = append(out, e.Version)
		}
	}
	return out
}

// readRolloutRequest reads and checks the JSON body of a decision: exact
// member names, one object, a known action, a valid version and channel,
// and a share within 0..rollout.Full.
func readRolloutRequest(w http.ResponseWriter, r *http.Request) (RolloutRequest, error) {
	var req RolloutRequest
	if r.ContentLength > MaxRolloutRequest {
		return req, fmt.Errorf("%w: body of %d bytes, limit %d", errTooLarge, r.ContentLength, MaxRolloutRequest)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRolloutRequest))
	if err != nil {
		return req, fmt.Errorf("read rollout request: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: rollout request: %v", errBadRequest, err)
	}
	if dec.More() {
		return req, fmt.Errorf("%w: rollout request: more than one JSON value", errBadRequest)
	}
	return req, checkRolloutRequest(req)
}

var rolloutActions = []string{rollout.Start, rollout.Halt, rollout.Resume, rollout.Pull, rollout.Promote}

func checkRolloutRequest(req RolloutRequest) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: rollout request: %s", errBadRequest, fmt.Sprintf(format, args...))
	}
	switch {
	case !slices.Contains(rolloutActions, req.Action):
		return bad("action %q is not one of start, halt, resume, pull, promote", req.Action)
	case release.ValidVersion(req.Version) != nil:
		return bad("version %q: %v", req.Version, release.ValidVersion(req.Version))
	case req.BasisPoints < 0 || req.BasisPoints > rollout.Full:
		return bad("basis_points %d is not within 0..%d", req.BasisPoints, rollout.Full)
	case req.Channel != "" && release.ValidChannel(req.Channel) != nil:
		return bad("channel %q: %v", req.Channel, release.ValidChannel(req.Channel))
	case req.Action == rollout.Promote && req.Channel == "":
		return bad("promote needs a channel")
	}
	return nil
}
