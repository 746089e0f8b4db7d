package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/store"
)

// The guard of rollouts (issue 9 item 6, R68): every tick, for each
// release with a plan (given when its rollout was started through the
// admin API), it loads the outcomes that enrolled installations reported
// and the release's signed decision, evaluates them (guard.Evaluate), and
// signs what the verdict asks for through Decide with the online rollout
// key: a halt when the failure budget is crossed, a start at the next
// stage's share when the stage has its healthy reports. Reading the
// decision, evaluating and signing happen under the lock the admin API's
// decisions take, so the guard never signs on a decision it did not see
// (it cannot undo a halt an operator just signed). What it found is kept
// with the plan in the store, logged when it changes, and exported as
// metrics.

// Evaluation ticks of the guard.
const (
	DefaultGuardTick = 5 * time.Second
	MaxGuardTick     = 10 * time.Second // a crossed budget halts within this
)

// GuardConfig configures NewGuard. Repo and Store are required.
type GuardConfig struct {
	Repo  Rollouter   // signs with the online rollout key; *repo.Repo is one
	Store store.Plans // the plans and the evidence
	// Lock is taken around every decision; give the admin API the same
	// one (AdminConfig.Guard does). nil: a lock of its own.
	Lock    sync.Locker
	Tick    time.Duration // 0: DefaultGuardTick; at most MaxGuardTick
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Guard evaluates and acts on guarded rollouts. It is safe for concurrent use.
type Guard struct {
	cfg  GuardConfig
	log  *slog.Logger
	lock sync.Locker

	mu      sync.Mutex
	last    map[string]guard.Status // by app "/" version: what was last logged
	lastErr map[string]string       // by app "/" version: the signing failure last logged
	signErr error                   // why the rollout key cannot sign (CheckSigner), nil if it can
}

// ErrCannotSign means the server cannot sign rollout decisions: its online
// rollout key does not open (ferry serve started without the online keys'
// passphrase, say). The admin API answers it 503 with the cause and the fix.
var ErrCannotSign = errors.New("the server cannot sign rollout decisions")

// signError is ErrCannotSign with its cause.
type signError struct{ cause error }

func (e *signError) Error() string {
	return ErrCannotSign.Error() + " (" + e.cause.Error() + "): start ferry serve with --passphrase-file FILE or FERRY_PASSPHRASE set, or with --online-key rollout=REF"
}

func (e *signError) Unwrap() []error { return []error{ErrCannotSign, e.cause} }

// signChecker is a Rollouter that can say whether it signs; *repo.Repo is one.
type signChecker interface {
	CanSignRollouts(ctx context.Context) error
}

// CheckSigner checks that the rollout key signs, and records the answer
// (SignError, the ferry_guard_can_sign metric): nil when it signs or the
// Rollouter cannot say; else an error wrapping ErrCannotSign with the
// cause and the fix. ferry serve calls it at start, so that guarded
// rollouts it cannot enforce are said at once, not at the first halt.
func (g *Guard) CheckSigner(ctx context.Context) error {
	c, ok := g.cfg.Repo.(signChecker)
	if !ok {
		return nil
	}
	var err error
	for i := 0; i <= guardRetries; i++ {
		if err = c.CanSignRollouts(ctx); !errors.Is(err, repo.ErrBusy) {
			break
		}
		time.Sleep(guardRetryWait)
	}
	switch {
	case errors.Is(err, repo.ErrBusy), errors.Is(err, repo.ErrNoRolloutRole), ctx.Err() != nil:
		return nil // not known (busy), or no rollouts to sign at all
	case err != nil:
		err = &signError{cause: err}
	}
	g.setSignErr(err)
	return err
}

func (g *Guard) setSignErr(err error) {
	g.mu.Lock()
	g.signErr = err
	g.mu.Unlock()
	g.cfg.Metrics.setGuardCanSign(err == nil)
}

// SignError is why the server cannot sign rollout decisions, as its last
// check found (at start, and again after a decision failed); nil if it can.
// The dashboard shows it in a banner.
func (g *Guard) SignError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.signErr
}

// signFailed turns a decision that failed into ErrCannotSign when the
// reason is that the rollout key does not sign (checked again now); other
// failures (a refused decision, a busy repository) are returned as they are.
func (g *Guard) signFailed(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, repo.ErrRefused) || errors.Is(err, repo.ErrBusy) || errors.Is(err, errBadRequest) || ctx.Err() != nil {
		return err
	}
	if _, ok := g.cfg.Repo.(signChecker); !ok {
		return err
	}
	if cerr := g.CheckSigner(ctx); cerr != nil {
		return cerr
	}
	return err
}

// NewGuard returns a guard; Run starts its loop.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if cfg.Repo == nil || cfg.Store == nil {
		return nil, errors.New("guard: Repo and Store are required")
	}
	switch {
	case cfg.Tick == 0:
		cfg.Tick = DefaultGuardTick
	case cfg.Tick < 0 || cfg.Tick > MaxGuardTick:
		return nil, fmt.Errorf("guard: an evaluation tick of %v is not within (0, %v]", cfg.Tick, MaxGuardTick)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{cfg: cfg, log: cfg.Logger, lock: cfg.Lock, last: map[string]guard.Status{}, lastErr: map[string]string{}}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.lock == nil {
		g.lock = &sync.Mutex{}
	}
	return g, nil
}

// Run evaluates every guarded rollout now and then every tick, until ctx
// ends. An error of one pass is logged, and the next tick tries again.
func (g *Guard) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.Tick)
	defer t.Stop()
	for {
		// A decision that could not be signed is logged by report, once
		// per release and failure, not here every tick.
		if err := g.Evaluate(ctx); err != nil && ctx.Err() == nil && !errors.As(err, new(*notSigned)) {
			g.log.Error("guard: evaluation", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Evaluate runs one pass: every plan is evaluated and acted on. It returns
// the first error (the other plans are still evaluated).
func (g *Guard) Evaluate(ctx context.Context) error {
	plans, err := g.cfg.Store.ListPlans(ctx, "")
	if err != nil {
		return err
	}
	// The newest plans first: a new rollout is the likeliest to fail, and
	// its halt should not wait behind the older ones.
	slices.SortStableFunc(plans, func(a, b store.RolloutPlan) int { return b.Created.Compare(a.Created) })
	var signed map[string][]string // by app; nil if the list failed (nothing retires as unsigned then)
	if entries, err := g.cfg.Repo.List(ctx); err == nil {
		signed = map[string][]string{}
		for _, e := range entries {
			signed[e.App] = append(signed[e.App], e.Version)
		}
	}
	var first error
	var all []guard.Status
	for _, p := range plans {
		var vs []string
		if signed != nil {
			if vs = signed[p.App]; vs == nil {
				vs = []string{} // known: none
			}
		}
		st, err := g.evaluate(ctx, p.App, p.Version, vs)
		if err != nil && first == nil {
			first = err
		}
		if st.Evaluated.IsZero() {
			continue
		}
		all = append(all, st)
	}
	g.cfg.Metrics.setGuard(all, g.cfg.Now())
	return first
}

// evaluate evaluates one release's plan and acts on it, under the lock.
// signed are the versions of app the repository signs (nil: not known).
func (g *Guard) evaluate(ctx context.Context, app, version string, signed []string) (guard.Status, error) {
	g.lock.Lock()
	defer g.lock.Unlock()
	return g.evaluateLocked(ctx, app, version, signed)
}

func (g *Guard) evaluateLocked(ctx context.Context, app, version string, signed []string) (guard.Status, error) {
	// Read again under the lock: an admin decision may have replaced or
	// removed the plan since the list was read.
	p, err := g.cfg.Store.Plan(ctx, app, version)
	if errors.Is(err, store.ErrNotFound) {
		return guard.Status{}, nil
	}
	if err != nil {
		return guard.Status{}, err
	}
	entry, err := currentEntry(g.cfg.Repo, app, version)
	if err != nil {
		return guard.Status{}, err
	}
	now := g.cfg.Now()
	why, settled := retirement(p, entry, signed, now)
	unsigned := signed != nil && !slices.Contains(signed, version)
	if why != "" && p.Status.Retired && (unsigned || p.Status.State == entry.State && p.Status.BasisPoints == entry.BasisPoints) {
		// Retired, and nothing signed since: no evidence to load, no
		// status to write (review 9 F9: a tick stays short however many
		// releases were ever guarded).
		return p.Status, nil
	}
	if unsigned {
		// Nothing can be signed about it any more: keep its last finding.
		p.Status.App, p.Status.Version, p.Status.Retired = app, version, true
		p.Status.Evaluated, p.Status.Verdict = now, guard.None.String()
		p.Status.Reason = "retired: the release is no longer signed"
		if err := g.cfg.Store.PutPlan(ctx, p); err != nil {
			return p.Status, err
		}
		g.report(p.Status, nil)
		return p.Status, nil
	}
	ev, err := g.cfg.Store.Outcomes(ctx, app, version)
	if err != nil {
		return guard.Status{}, err
	}
	cur := guard.Current{State: entry.State, BasisPoints: entry.BasisPoints, Stage: p.Stage, StageSince: p.StageSince}
	v := guard.Evaluate(p.Plan, cur, ev, now)
	v.Status.App, v.Status.Version = app, version
	if v.Action == guard.None && entry.State == rollout.Halted && p.Status.Breached {
		// Halted by the guard, and not resumed since: keep saying why.
		v.Status.Breached, v.Status.Reason = true, p.Status.Reason
	}
	if why != "" && v.Action == guard.None {
		// This finding is the last until a decision changes the rollout.
		v.Status.Retired = true
		if settled {
			v.Status.Reason += "; retired: " + why
		}
	}
	actErr := g.act(ctx, &p, &v, now)
	if actErr != nil {
		actErr = g.signFailed(ctx, actErr)
		v.Status.Reason += fmt.Sprintf("; the %s could not be signed: %v", v.Action, actErr)
		v.Status.NotSigned = actErr.Error()
	}
	p.Status = v.Status
	if err := g.cfg.Store.PutPlan(ctx, p); err != nil {
		return p.Status, err
	}
	g.report(p.Status, actErr)
	if actErr != nil {
		return p.Status, &notSigned{actErr}
	}
	return p.Status, nil
}

// notSigned is a decision the guard's verdict asked for that could not be
// signed; report has logged it.
type notSigned struct{ err error }

func (e *notSigned) Error() string { return e.err.Error() }
func (e *notSigned) Unwrap() error { return e.err }

// retirement says why p, whose release's signed decision is e, needs no
// more evaluation ("" while it does): a halted or pulled rollout (until a
// resume or a start), and a finished one, at its last stage and offered to
// everyone for longer than its stage wait and two check intervals, so
// that an installation that started it as it reached everyone has had the
// time to report or to count as silent. settled is the finished case.
// signed, when known, are the versions the repository signs: a version no
// longer among them retires too.
func retirement(p store.RolloutPlan, e rollout.Entry, signed []string, now time.Time) (why string, settled bool) {
	switch {
	case signed != nil && !slices.Contains(signed, p.Version):
		return "the release is no longer signed", false
	case e.State != rollout.Active:
		return string(e.State), false
	}
	plan := p.Plan.WithDefaults()
	watch := plan.StageWait + 2*plan.CheckInterval
	if e.BasisPoints == rollout.Full && p.Stage+1 >= len(plan.Stages) && now.Sub(p.StageSince) > watch {
		return fmt.Sprintf("offered to everyone for over %v (stage wait and two check intervals); a new decision about it evaluates it again", watch), true
	}
	return "", false
}

// act signs what v asks for and updates p and v's status to what was signed.
func (g *Guard) act(ctx context.Context, p *store.RolloutPlan, v *guard.Verdict, now time.Time) error {
	var a rollout.Action
	switch v.Action {
	case guard.Halt:
		a = rollout.Action{Kind: rollout.Halt, Version: p.Version}
	case guard.Advance:
		a = rollout.Action{Kind: rollout.Start, Version: p.Version, BasisPoints: v.BasisPoints}
	default:
		return nil
	}
	e, err := g.sign(ctx, p.App, a)
	if err != nil {
		return err
	}
	if g.SignError() != nil {
		g.setSignErr(nil) // it signs again
	}
	v.Signed(e, now)
	if v.Action == guard.Halt {
		g.cfg.Metrics.observeGuardAction(p.App, rollout.Halt)
		return nil
	}
	p.Stage, p.StageSince = v.Stage, now
	g.cfg.Metrics.observeGuardAction(p.App, "advance")
	return nil
}

// guardRetries is how often a decision that found the repository busy
// (another publisher, or the refresher, signing) is tried again within
// one tick, guardRetryWait apart.
const (
	guardRetries   = 20
	guardRetryWait = 100 * time.Millisecond
)

func (g *Guard) sign(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error) {
	for i := 0; ; i++ {
		e, err := Decide(ctx, g.cfg.Repo, app, a)
		if !errors.Is(err, repo.ErrBusy) || i == guardRetries {
			return e, err
		}
		select {
		case <-ctx.Done():
			return rollout.Entry{}, ctx.Err()
		case <-time.After(guardRetryWait):
		}
	}
}

// report logs what the guard did, and a finding that changed since the
// last one logged (held, breached, the verdict or the stage).
func (g *Guard) report(st guard.Status, actErr error) {
	key := st.App + "/" + st.Version
	g.mu.Lock()
	last, seen := g.last[key]
	g.last[key] = st
	lastErr := g.lastErr[key]
	if actErr != nil {
		g.lastErr[key] = actErr.Error()
	} else {
		delete(g.lastErr, key)
	}
	g.mu.Unlock()
	attrs := []any{"app", st.App, "version", st.Version, "stage", st.Stage + 1, "basis_points", st.BasisPoints,
		"state", string(st.State), "started", st.Started, "healthy", st.Healthy, "failed", st.Failed,
		"silent", st.Silent, "stage_healthy", st.StageHealthy, "reason", st.Reason}
	switch {
	case actErr != nil && lastErr != actErr.Error():
		// Logged when it first fails and when the failure changes, not
		// every tick while it goes on failing (a missing key, a busy
		// repository), nor when only the evidence changes: the status
		// keeps saying it.
		g.log.Error("guard: "+st.Verdict+" not signed", append(attrs, "err", actErr.Error())...)
	case actErr != nil:
	case st.Verdict == guard.Halt.String():
		g.log.Warn("guard: rollout halted", attrs...)
	case st.Verdict == guard.Advance.String():
		g.log.Info("guard: rollout advanced", attrs...)
	case st.Held && (!seen || !last.Held):
		g.log.Warn("guard: stage holds", attrs...)
	case !seen || last.State != st.State || last.Stage != st.Stage || last.Held != st.Held:
		g.log.Info("guard: watching", attrs...)
	}
}

// currentEntry is the signed decision about app's version: the default
// (stable, active, everyone) when no decision names it.
func currentEntry(ro Rollouter, app, version string) (rollout.Entry, error) {
	doc, err := ro.Rollouts(app)
	if err != nil {
		return rollout.Entry{}, err
	}
	if doc != nil {
		if e, ok := doc.Releases[version]; ok {
			return e, nil
		}
	}
	return rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Active}, nil
}

// Status returns what the guard last found for each guarded rollout of app
// ("" for every application), by application and then by the time its
// plan was given; a plan not evaluated yet has its plan and stage, and
// says so in Reason.
func (g *Guard) Status(ctx context.Context, app string) ([]guard.Status, error) {
	plans, err := g.cfg.Store.ListPlans(ctx, app)
	if err != nil {
		return nil, err
	}
	out := make([]guard.Status, 0, len(plans))
	for _, p := range plans {
		st := p.Status
		if st.Evaluated.IsZero() {
			st = guard.Status{Plan: p.Plan.WithDefaults(), Stage: p.Stage, StageSince: p.StageSince, Reason: "not evaluated yet: the guard evaluates it within one tick"}
		}
		st.App, st.Version = p.App, p.Version
		out = append(out, st)
	}
	return out, nil
}

// Decide signs an admin decision under the guard's lock and keeps the
// release's plan in step: a start with a plan records it (its first stage
// from now; a plan without stages watches the share started), a start
// without one removes the plan the release had (whoever sets a share by
// hand decides from then on), and the other decisions keep it (a halt or
// pull stops the guard acting until a resume). A plan goes only with a
// start, and a staged plan's first stage is the share it starts at.
func (g *Guard) Decide(ctx context.Context, app string, a rollout.Action, plan *guard.Plan) (rollout.Entry, error) {
	if plan != nil {
		if err := checkPlan(a, *plan); err != nil {
			return rollout.Entry{}, err
		}
	}
	g.lock.Lock()
	defer g.lock.Unlock()
	now := g.cfg.Now()
	e, err := Decide(ctx, g.cfg.Repo, app, a)
	if err != nil {
		return e, g.signFailed(ctx, err)
	}
	switch {
	case plan != nil:
		err = g.cfg.Store.PutPlan(ctx, store.RolloutPlan{App: app, Version: a.Version, Plan: *plan, StageSince: now, Created: now})
	case a.Kind == rollout.Start:
		err = g.cfg.Store.DeletePlan(ctx, app, a.Version)
	}
	if err != nil {
		return e, fmt.Errorf("the decision is signed, but its plan was not recorded: %w", err)
	}
	if plan != nil {
		// Its first finding now, so the status shows it at once; with
		// failures reported already it may halt it at once too, and the
		// answer is what is signed then.
		if _, err := g.evaluateLocked(ctx, app, a.Version, nil); err != nil && !errors.As(err, new(*notSigned)) {
			g.log.Error("guard: evaluation", "app", app, "version", a.Version, "err", err.Error())
		}
		return currentEntry(g.cfg.Repo, app, a.Version)
	}
	return e, nil
}

// checkPlan checks a plan given with decision a.
func checkPlan(a rollout.Action, p guard.Plan) error {
	if a.Kind != rollout.Start {
		return fmt.Errorf("%w: rollout request: a plan goes with start, not %s", errBadRequest, a.Kind)
	}
	if err := p.Check(); err != nil {
		return fmt.Errorf("%w: rollout request: plan: %v", errBadRequest, err)
	}
	if len(p.Stages) > 0 && a.BasisPoints != p.Stages[0] {
		return fmt.Errorf("%w: rollout request: basis_points %d is not the plan's first stage, %d", errBadRequest, a.BasisPoints, p.Stages[0])
	}
	return nil
}

// attach sets the Guard member of st's releases that have a plan.
func (g *Guard) attach(ctx context.Context, st *RolloutStatus) error {
	all, err := g.Status(ctx, st.App)
	if err != nil {
		return err
	}
	for i := range st.Releases {
		for j := range all {
			if all[j].Version == st.Releases[i].Version {
				st.Releases[i].Guard = &all[j]
			}
		}
	}
	return nil
}
