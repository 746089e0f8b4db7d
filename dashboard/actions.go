package dashboard

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// The actions the dashboard signs: start (and widen: start with a larger
// share), halt, resume, pull.
var actions = []string{rollout.Start, rollout.Halt, rollout.Resume, rollout.Pull}

func (d *dash) decide(w http.ResponseWriter, r *http.Request, s *session) {
	app := r.PathValue("app")
	back := Prefix + "apps/" + url.PathEscape(app)
	if rg := r.PostFormValue("range"); rg != "" {
		back += "?range=" + chartRangeOf(rg).name // back to the chart's range
	}
	refuse := func(msg string) {
		d.sessions.setFlash(s, flash{msg: msg, err: true})
		http.Redirect(w, r, back, http.StatusSeeOther)
	}
	if release.ValidApp(app) != nil {
		http.Error(w, "no such application", http.StatusNotFound)
		return
	}
	act := rollout.Action{Kind: r.PostFormValue("action"), Version: r.PostFormValue("version")}
	switch {
	case !slices.Contains(actions, act.Kind):
		http.Error(w, "unknown action: want start, halt, resume or pull", http.StatusBadRequest)
		return
	case release.ValidVersion(act.Version) != nil:
		http.Error(w, "invalid version: "+release.ValidVersion(act.Version).Error(), http.StatusBadRequest)
		return
	}
	var plan *guard.Plan
	if act.Kind == rollout.Start {
		bp, p, err := startOf(r)
		if err != nil {
			refuse("Not started: " + err.Error() + ".")
			return
		}
		act.BasisPoints, plan = bp, p
	}
	if act.Kind == rollout.Pull && r.PostFormValue("confirm") != "yes" {
		refuse("Not pulled: tick the box to confirm. A pull moves every installation of " + act.Version + " to the newest good release.")
		return
	}
	entry, err := d.cfg.Decide(r.Context(), app, act, plan)
	if err != nil {
		d.log.Warn("dashboard: rollout refused", "app", app, "action", act.Kind, "version", act.Version, "err", err, "remote", clientIP(r))
		// "refused: ..." would read "refused: refused: ..." after ours.
		msg := strings.TrimPrefix(err.Error(), repo.ErrRefused.Error()+": ")
		if errors.Is(err, repo.ErrBusy) {
			msg = "the repository is busy with another publish: try again in a moment"
		}
		refuse(fmt.Sprintf("%s %s %s refused: %s.", cmp.Or(act.Kind, "?"), app, act.Version, msg))
		return
	}
	attrs := []any{"app", app, "action", act.Kind, "version", act.Version,
		"channel", entry.Channel, "basis_points", entry.BasisPoints, "state", string(entry.State), "remote", clientIP(r)}
	msg := fmt.Sprintf("Signed: %s %s is %s at %s in %s", app, act.Version, entry.State, pct(entry.BasisPoints), entry.Channel)
	if plan != nil {
		attrs = append(attrs, "stages", guard.FormatStages(plan.Stages), "budget_bp", plan.Budget)
		msg += "; guarded: " + plan.Describe()
	}
	d.log.Info("dashboard: rollout", attrs...)
	d.sessions.setFlash(s, flash{msg: msg + "."})
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// specNames name the start form's fields in its errors as the form
// labels them.
var specNames = map[string]string{"percent": "share", "stages": "stages", "stage-wait": "stage wait",
	"min-healthy": "min healthy", "budget": "budget", "check-interval": "check interval"}

// startOf reads a start's share and plan from its form, through
// guard.Spec as ferry rollout start reads its flags: the fields have the
// flags' names, and one left empty is a flag not given. The guarded start
// form (guarded=yes) must give a plan: its share alone would set the share
// by hand and end the release's plan.
func startOf(r *http.Request) (int, *guard.Plan, error) {
	field := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	spec := guard.Spec{Percent: field("percent"), Stages: field("stages"), StageWait: field("stage-wait"),
		MinHealthy: field("min-healthy"), Budget: field("budget"), CheckInterval: field("check-interval"), Names: specNames}
	if r.PostFormValue("guarded") == "yes" && !spec.Planned() {
		return 0, nil, errors.New("a guarded start needs stages, or a share and a budget for a watched rollout (Start alone sets a share by hand)")
	}
	return spec.Start()
}
