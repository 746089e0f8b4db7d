package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/rollout"
)

// RefreshOptions say what RefreshWith re-signs. The zero value re-signs
// what is due with whatever keys this Repo has.
type RefreshOptions struct {
	// Force re-signs snapshot and timestamp even if neither is due.
	Force bool
	// OnlineOnly uses the online keys alone: timestamp, and snapshot when
	// due, are re-signed; every offline role that is due is reported in
	// Refreshed.Due and nothing else is opened. This is what a server does.
	OnlineOnly bool
	// Roles are offline roles to re-sign now, due or not: "targets" or
	// application names. Their keys must be available (Options); roles
	// not named are only reported when due. Root is never re-signed here:
	// a new root is a ceremony.
	Roles []string
}

// Refreshed reports what RefreshWith did.
type Refreshed struct {
	Signed []string     // roles re-signed, in the order they were written
	Due    []RoleStatus // offline roles due (or expired) that were not re-signed: their holders must
}

// Refresh re-signs what is due: timestamp and snapshot when within half
// their lifetime (or always, if force), and targets and application roles
// within half their lifetime whose keys this Repo has (a due role whose
// keys are elsewhere is skipped, see RefreshWith). Root is never re-signed
// here. Each re-signed role gets the next version.
func (r *Repo) Refresh(ctx context.Context, force bool) error {
	_, err := r.RefreshWith(ctx, RefreshOptions{Force: force})
	return err
}

// RefreshWith re-signs as o says. It never fails because an offline role is
// due and its key is not here: that role is listed in Refreshed.Due and the
// online roles are re-signed all the same, so clients keep updating.
func (r *Repo) RefreshWith(ctx context.Context, o RefreshOptions) (Refreshed, error) {
	res, err := r.refresh(ctx, o)
	if err != nil {
		return res, fmt.Errorf("refresh %s: %w", r.dir, err)
	}
	return res, nil
}

func (r *Repo) refresh(ctx context.Context, o RefreshOptions) (Refreshed, error) {
	var res Refreshed
	unlock, err := r.lock()
	if err != nil {
		return res, err
	}
	defer unlock()
	st, err := r.loadState()
	if err != nil {
		return res, err
	}
	if err := checkRoles(st, o.Roles); err != nil {
		return res, err
	}
	var ch change
	for _, s := range r.status(st) {
		if s.Role == rollout.RoleName && s.Due {
			sign, err := r.canSignRollout(ctx, st)
			if err != nil {
				return res, err
			}
			if sign {
				ch.apps = append(ch.apps, s.Role)
			} else {
				res.Due = append(res.Due, s)
			}
		}
		if s.Custody == CustodyOnline {
			continue
		}
		sign, err := r.shouldSign(ctx, st, s, o)
		if err != nil {
			return res, err
		}
		switch {
		case sign && s.Role == metadata.TARGETS:
			ch.targets = true
		case sign:
			ch.apps = append(ch.apps, s.Role)
		case s.Due:
			res.Due = append(res.Due, s)
		}
	}
	now, exp := r.now(), r.settings.exp
	ch.snapshot = o.Force || stale(now, st.snapshot.Signed.Expires, exp.Snapshot)
	if !o.Force && !ch.snapshotChanged() && !stale(now, st.timestamp.Signed.Expires, exp.Timestamp) {
		return res, nil
	}
	if err := r.commit(ctx, st, ch); err != nil {
		return res, err
	}
	res.Signed = append(slices.Sorted(slices.Values(ch.apps)), res.Signed...)
	if ch.targets {
		res.Signed = append(res.Signed, metadata.TARGETS)
	}
	if ch.snapshotChanged() {
		res.Signed = append(res.Signed, metadata.SNAPSHOT)
	}
	res.Signed = append(res.Signed, metadata.TIMESTAMP)
	return res, nil
}

// shouldSign decides whether refresh re-signs the offline role s: always
// when named in o.Roles (its keys must be here), never for root or when
// o.OnlineOnly, and otherwise when it is due and its keys are here.
func (r *Repo) shouldSign(ctx context.Context, st *state, s RoleStatus, o RefreshOptions) (bool, error) {
	if slices.Contains(o.Roles, s.Role) {
		return true, nil
	}
	if s.Role == metadata.ROOT || o.OnlineOnly || len(o.Roles) > 0 || !s.Due {
		return false, nil
	}
	var err error
	if s.Role == metadata.TARGETS {
		_, err = r.topKeys(ctx, st, s.Role)
	} else {
		_, err = r.appKeys(ctx, st, s.Role)
	}
	switch {
	case errors.Is(err, ErrMissingKey):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// canSignRollout reports whether the rollout role's key is here. A Repo
// without it (a holder's machine) reports the role as due instead: the
// server re-signs it.
func (r *Repo) canSignRollout(ctx context.Context, st *state) (bool, error) {
	_, err := r.appKeys(ctx, st, rollout.RoleName)
	switch {
	case errors.Is(err, ErrMissingKey):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// checkRoles refuses role names refresh cannot re-sign on request.
func checkRoles(st *state, roles []string) error {
	for _, role := range roles {
		switch {
		case role == metadata.ROOT:
			return fmt.Errorf("root is not re-signed by refresh: a new root is made by its holders (ferry root propose, sign, publish)")
		case isOnline(role):
			return fmt.Errorf("%s is an online role: refresh re-signs it whenever it is due (--force to re-sign it now)", role)
		case role != metadata.TARGETS && st.apps[role] == nil:
			return fmt.Errorf("no role %q: want targets or the name of a published application", role)
		}
	}
	return nil
}

// Who holds a role's keys (RoleStatus.Custody).
const (
	CustodyOnline  = "online"  // snapshot, timestamp, _rollout: the server re-signs them on its own
	CustodyOffline = "offline" // root, targets: their holders, off the server
	CustodyApp     = "app"     // an application role: its release pipeline
)

// RoleStatus describes one role of a repository as it is served.
type RoleStatus struct {
	Role      string        `json:"role"`
	Version   int64         `json:"version"`
	Expires   time.Time     `json:"expires"`
	TimeLeft  time.Duration `json:"time_left_ns"` // negative once expired
	Due       bool          `json:"due"`          // within half its lifetime of expiring, or expired
	Threshold int           `json:"threshold"`
	KeyIDs    []string      `json:"keyids"`
	Custody   string        `json:"custody"`     // CustodyOnline, CustodyOffline or CustodyApp
	ResignCmd string        `json:"resign_with"` // the command that re-signs it
}

// Status lists every role (root, targets, snapshot, timestamp, the rollout
// role rollout.RoleName when the repository has one, then the
// applications by name) with its expiry judged by the Repo's clock and who
// must re-sign it. It reads only public metadata: no key is opened.
func (r *Repo) Status(ctx context.Context) ([]RoleStatus, error) {
	st, err := r.loadState()
	if err != nil {
		return nil, err
	}
	return r.status(st), ctx.Err()
}

func (r *Repo) status(st *state) []RoleStatus {
	now, exp := r.now(), r.settings.exp
	row := func(role string, version int64, expires time.Time, life time.Duration, threshold int, ids []string) RoleStatus {
		s := RoleStatus{
			Role: role, Version: version, Expires: expires, TimeLeft: expires.Sub(now),
			Due: stale(now, expires, life), Threshold: threshold, KeyIDs: ids,
		}
		s.Custody, s.ResignCmd = r.custody(role)
		return s
	}
	rs := st.root.Signed.Roles
	out := []RoleStatus{
		row(metadata.ROOT, st.root.Signed.Version, st.root.Signed.Expires, exp.Root, rs[metadata.ROOT].Threshold, rs[metadata.ROOT].KeyIDs),
		row(metadata.TARGETS, st.targets.Signed.Version, st.targets.Signed.Expires, exp.Targets, rs[metadata.TARGETS].Threshold, rs[metadata.TARGETS].KeyIDs),
		row(metadata.SNAPSHOT, st.snapshot.Signed.Version, st.snapshot.Signed.Expires, exp.Snapshot, rs[metadata.SNAPSHOT].Threshold, rs[metadata.SNAPSHOT].KeyIDs),
		row(metadata.TIMESTAMP, st.timestamp.Signed.Version, st.timestamp.Signed.Expires, exp.Timestamp, rs[metadata.TIMESTAMP].Threshold, rs[metadata.TIMESTAMP].KeyIDs),
	}
	if md := st.apps[rollout.RoleName]; md != nil {
		d := delegation(st, rollout.RoleName)
		out = append(out, row(rollout.RoleName, md.Signed.Version, md.Signed.Expires, r.lifetime(rollout.RoleName), d.Threshold, d.KeyIDs))
	}
	for _, app := range sortedKeys(st.apps) {
		if app == rollout.RoleName {
			continue
		}
		md, d := st.apps[app], delegation(st, app)
		out = append(out, row(app, md.Signed.Version, md.Signed.Expires, r.lifetime(app), d.Threshold, d.KeyIDs))
	}
	return out
}

// custody says who holds role's keys and which command re-signs it.
func (r *Repo) custody(role string) (string, string) {
	switch role {
	case metadata.ROOT:
		return CustodyOffline, "ferry root propose --repo " + r.dir + " (then its holders sign, and ferry root publish)"
	case metadata.TARGETS:
		return CustodyOffline, "ferry repo refresh --repo " + r.dir + " --offline-keys DIR --role targets"
	case metadata.SNAPSHOT, metadata.TIMESTAMP, rollout.RoleName:
		return CustodyOnline, "ferry serve (on its schedule) or ferry repo refresh --repo " + r.dir + " --online-only"
	}
	return CustodyApp, "ferry repo refresh --repo " + r.dir + " --role " + role + " --app-key KEY (or --offline-keys DIR), or its next release"
}
