package server

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/store"
)

// errRewritten is a batch that contradicts the chain the server stored.
var errRewritten = errors.New("the audit log was rewritten")

// SecurityRewritten is the kind of the security event the server logs and
// records in its store (store.SecurityEvents) when an installation's batch
// contradicts what it reported before (R65).
const SecurityRewritten = "report.log_rewritten"

// SecurityOutOfScope is the kind of the security event recorded when an
// installation reports about an application its enrollment token is not
// for (R68): the batch is refused, since such reports would otherwise be
// the guard's evidence about another application's rollout.
const SecurityOutOfScope = "report.out_of_scope"

// ServerSecurityKinds are the kinds of the security events the server
// finds itself (recordSecurity), each counted in /metrics.
var ServerSecurityKinds = []string{SecurityRewritten, SecurityOutOfScope}

func (p *reporting) events(w http.ResponseWriter, r *http.Request) {
	in, ok := p.installation(w, r)
	if !ok {
		return
	}
	if ok, wait := p.byCred.allow(in.ID); !ok {
		tooMany(w, p.log, wait, "installation", in.ID)
		return
	}
	// After the installation's own bucket, so one noisy installation is
	// refused by its own rate before it uses up its token's.
	if ok, wait := p.byEnrolled.allow(in.TokenID); !ok {
		if sw, ok := w.(*statusWriter); ok {
			sw.shared = true
		}
		tooMany(w, p.log, wait, "installations of token", in.TokenID)
		return
	}
	var req EventsRequest
	if err := readJSON(w, r, p.cfg.MaxBody, &req); err != nil {
		p.refuse(w, r, in.ID, statusOf(err), err.Error())
		return
	}
	if req.InstallID != in.ID {
		p.log.Warn("report: events for another installation", "event", "report.wrong_installation",
			"install_id", in.ID, "claimed", req.InstallID, "remote", clientIP(r))
		writeError(w, http.StatusForbidden, fmt.Sprintf("this credential reports for installation %s, not %q", in.ID, req.InstallID))
		return
	}
	batch, err := parseBatch(req)
	if err == nil {
		err = checkApps(req.Apps)
	}
	if err != nil {
		p.refuse(w, r, in.ID, http.StatusBadRequest, err.Error())
		return
	}
	if err := inScope(in, batch, req.Apps); err != nil {
		p.log.Warn("report: outside the enrollment token's scope", "event", SecurityOutOfScope, "install_id", in.ID,
			"token", in.TokenID, "err", err.Error(), "remote", clientIP(r))
		p.recordSecurity(r.Context(), store.SecurityEvent{InstallID: in.ID, Time: p.cfg.Now(), Kind: SecurityOutOfScope, Cause: err.Error(),
			Evidence: map[string]string{"remote": clientIP(r), "token": in.TokenID, "scope": in.TokenScope}})
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	ans, err := p.store(r.Context(), in.ID, batch, req.Apps)
	switch {
	case errors.Is(err, errRewritten), errors.Is(err, store.ErrConflict):
		p.log.Warn("report: audit log rewritten", "event", SecurityRewritten, "install_id", in.ID, "err", err.Error(), "remote", clientIP(r))
		p.recordSecurity(r.Context(), store.SecurityEvent{InstallID: in.ID, Time: p.cfg.Now(), Kind: SecurityRewritten, Cause: err.Error(),
			Evidence: map[string]string{"remote": clientIP(r), "lines": strconv.Itoa(len(batch))}})
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		p.refuse(w, r, in.ID, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, ans)
	}
}

// inScope checks that every event of a batch, and every application the
// installation says it runs, is of the application its enrollment token
// is for ("*": any). An event of no application (the agent's own) is of
// none. The whole batch is refused otherwise: the audit chain goes on
// only once the installation stops claiming another application.
func inScope(in store.Installation, batch []store.Event, apps []App) error {
	if in.TokenScope == "*" {
		return nil
	}
	for _, e := range batch {
		if e.App != "" && e.App != in.TokenScope {
			return fmt.Errorf("installation %s was enrolled with token %s for application %s; its report about %q (seq %d) is refused; enroll it with a token for %q to report about that application",
				in.ID, in.TokenID, in.TokenScope, e.App, e.Seq, e.App)
		}
	}
	for _, a := range apps {
		if a.App != in.TokenScope {
			return fmt.Errorf("installation %s was enrolled with token %s for application %s, not %q; enroll it with a token for %q to report about that application",
				in.ID, in.TokenID, in.TokenScope, a.App, a.App)
		}
	}
	return nil
}

// recordSecurity keeps a security event the server found: in the store
// (the dashboard's and the API's evidence) and in the metrics, which count
// it even when the store fails, since it was found.
func (p *reporting) recordSecurity(ctx context.Context, sec store.SecurityEvent) {
	p.cfg.Metrics.ObserveSecurity(sec.Kind)
	if err := p.cfg.Store.RecordSecurity(ctx, sec); err != nil {
		p.log.Error("report: record security event", "install_id", sec.InstallID, "kind", sec.Kind, "err", err.Error())
	}
}

// installation authenticates the request's credential: 401 unless it is
// the credential of an enrolled installation (compared in constant time).
func (p *reporting) installation(w http.ResponseWriter, r *http.Request) (store.Installation, bool) {
	cred, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	deny := func(msg string) (store.Installation, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
		p.refuse(w, r, "", http.StatusUnauthorized, msg)
		return store.Installation{}, false
	}
	if cred == "" {
		return deny("an installation credential is required (Authorization: Bearer CREDENTIAL; ferry agent enroll)")
	}
	id := credentialInstall(cred)
	if id == "" {
		return deny("unknown installation credential")
	}
	in, err := p.cfg.Store.Installation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return deny("unknown installation credential")
	}
	if err != nil {
		p.refuse(w, r, id, http.StatusInternalServerError, err.Error())
		return store.Installation{}, false
	}
	want, err := hex.DecodeString(in.CredentialHash)
	got, _ := hex.DecodeString(hashToken(cred))
	if err != nil || subtle.ConstantTimeCompare(got, want) != 1 {
		return deny("unknown installation credential")
	}
	if !in.Revoked.IsZero() {
		p.refuse(w, r, in.ID, http.StatusForbidden, fmt.Sprintf("installation %s was revoked at %s (ferry installation revoke): its reports are refused; a machine trusted again enrolls with a new state directory",
			in.ID, in.Revoked.UTC().Format(time.RFC3339)))
		return store.Installation{}, false
	}
	if !in.TokenRevoked.IsZero() {
		// Revoking a leaked enrollment token also disowns what it enrolled
		// (R69): their reports are neither stored nor counted.
		p.refuse(w, r, in.ID, http.StatusForbidden, fmt.Sprintf("installation %s was enrolled with token %s, revoked at %s: its reports are refused; enroll it again with a valid token (remove the agent's report-credentials.json, then ferry agent enroll)",
			in.ID, in.TokenID, in.TokenRevoked.UTC().Format(time.RFC3339)))
		return store.Installation{}, false
	}
	return in, true
}

// parseBatch checks every line and the links between consecutive ones.
func parseBatch(req EventsRequest) ([]store.Event, error) {
	if len(req.Lines) > MaxBatch {
		return nil, fmt.Errorf("%d lines in one batch, at most %d", len(req.Lines), MaxBatch)
	}
	out := make([]store.Event, 0, len(req.Lines))
	for i, l := range req.Lines {
		rec, hash, err := audit.ParseLine([]byte(l))
		if err != nil {
			return nil, fmt.Errorf("line %d of the batch: %v", i+1, err)
		}
		if i > 0 {
			last := out[i-1]
			switch {
			case rec.Seq <= last.Seq:
				return nil, fmt.Errorf("line %d of the batch: seq %d after seq %d; lines go in order", i+1, rec.Seq, last.Seq)
			case rec.Seq == last.Seq+1 && rec.Prev != last.Hash:
				return nil, fmt.Errorf("line %d of the batch (seq %d): prev %s, but seq %d hashes to %s", i+1, rec.Seq, rec.Prev, last.Seq, last.Hash)
			}
		}
		out = append(out, store.Event{Seq: rec.Seq, Prev: rec.Prev, Hash: hash, Event: rec.Event()})
	}
	return out, nil
}

// store checks the batch against the chain stored before and stores it.
func (p *reporting) store(ctx context.Context, id string, batch []store.Event, apps []App) (EventsAnswer, error) {
	head, err := p.cfg.Store.ChainHead(ctx, id)
	if err != nil {
		return EventsAnswer{}, err
	}
	for _, e := range batch {
		if e.Seq == head.Seq+1 && head.Seq > 0 && e.Prev != head.Hash {
			return EventsAnswer{}, fmt.Errorf("%w: seq %d has prev %s, but the server has seq %d with hash %s", errRewritten, e.Seq, e.Prev, head.Seq, head.Hash)
		}
	}
	now := p.cfg.Now()
	for i := range batch {
		batch[i].Received = now
	}
	added, err := p.cfg.Store.Report(ctx, id, batch, now, storeApps(apps))
	if err != nil {
		return EventsAnswer{}, err
	}
	p.cfg.Metrics.ObserveCheckin()
	if added > 0 {
		// The new events are those above the head stored before (the
		// batch is in order, and what the store skipped was resent).
		for _, e := range batch {
			if e.Seq > head.Seq {
				p.cfg.Metrics.ObserveEvent(e.Kind, e.App)
			}
		}
	}
	if len(batch) > 0 && batch[len(batch)-1].Seq > head.Seq {
		last := batch[len(batch)-1]
		head = store.Head{Seq: last.Seq, Hash: last.Hash}
	}
	return EventsAnswer{Added: added, Head: audit.State{Seq: head.Seq, Hash: head.Hash}}, nil
}
