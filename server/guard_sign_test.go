package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/store"
)

// TestGuardCannotSignSaid: a server whose rollout key does not open (its
// repository opened without the passphrase, as ferry serve is without
// FERRY_PASSPHRASE) says so: CheckSigner fails with the cause and the fix,
// ferry_guard_can_sign is 0, an admin decision is 503 naming the fix (not
// 500 "internal error"), and a guarded rollout whose budget is crossed is
// logged once as not halted, not every tick, and its status says it is
// NOT halted.
func TestGuardCannotSignSaid(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	metrics, err := NewMetrics(MetricsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		evals int
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		evals++
		return guardT0
	}
	var g *Guard
	f := newAdminFixture(t, func(c *AdminConfig) {
		nopass, err := repo.Open(filepath.Dir(c.Tokens), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Repo = nopass
		if g, err = NewGuard(GuardConfig{Repo: nopass, Store: st, Metrics: metrics, Logger: c.Logger, Now: clock, Tick: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		c.Guard = g
	})

	err = g.CheckSigner(ctx)
	if !errors.Is(err, ErrCannotSign) || !strings.Contains(err.Error(), "--passphrase-file") {
		t.Fatalf("CheckSigner = %v; want ErrCannotSign naming --passphrase-file", err)
	}
	if g.SignError() == nil {
		t.Error("SignError is nil after a failed check")
	}
	if v := gaugeValue(t, metrics, "ferry_guard_can_sign"); v != 0 {
		t.Errorf("ferry_guard_can_sign = %v, want 0", v)
	}

	_, err = f.client(t, f.roll).Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "1.0.0", BasisPoints: 1000})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "cannot sign rollout decisions") ||
		!strings.Contains(err.Error(), "--passphrase-file") || strings.Contains(err.Error(), "internal error") {
		t.Fatalf("a decision the server cannot sign: %v; want 503 naming the cause and the fix", err)
	}

	// A watched rollout of hello 1.0.0 whose installation failed.
	if err := st.PutPlan(ctx, store.RolloutPlan{App: "hello", Version: "1.0.0", Plan: guard.Plan{Budget: 500}, StageSince: guardT0, Created: guardT0}); err != nil {
		t.Fatal(err)
	}
	h := hashToken("enroll-secret")
	if err := st.CreateToken(ctx, store.Token{ID: "enr", Kind: store.Enroll, Scope: "*", Hash: h, Created: guardT0}); err != nil {
		t.Fatal(err)
	}
	if err := st.Enroll(ctx, store.Installation{ID: "bad", CredentialHash: hashToken("cred-bad"), Enrolled: guardT0}, h); err != nil {
		t.Fatal(err)
	}
	var batch []store.Event
	for i, k := range []event.Kind{event.InstallStarted, event.HealthFailed} {
		batch = append(batch, store.Event{Seq: uint64(i + 1), Hash: fmt.Sprintf("bad-%d", i), Received: guardT0,
			Event: event.Event{Time: guardT0, Kind: k, App: "hello", Version: "1.0.0"}})
	}
	if _, err := st.AppendEvents(ctx, "bad", batch); err != nil {
		t.Fatal(err)
	}
	before := len(f.logs.String())
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.Run(rctx) }()
	for {
		mu.Lock()
		n := evals
		mu.Unlock()
		if n >= 6 { // several ticks
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	logs := f.logs.String()[before:]
	if n := strings.Count(logs, `"level":"ERROR"`); n != 1 {
		t.Errorf("%d error lines over several ticks, want 1 (the halt not signed, once):\n%s", n, logs)
	}
	if !strings.Contains(logs, `"msg":"guard: halt not signed"`) {
		t.Errorf("no line says the halt was not signed:\n%s", logs)
	}
	sts, err := g.Status(ctx, "hello")
	if err != nil || len(sts) != 1 {
		t.Fatalf("Status = %+v, %v", sts, err)
	}
	if s := sts[0]; !s.Breached || s.State != rollout.Active || !strings.Contains(s.NotSigned, "cannot sign rollout decisions") {
		t.Errorf("status = %+v; want breached, active, NotSigned saying why", s)
	}
}

// gaugeValue is the value of the unlabelled gauge name in m (-1 if absent).
func gaugeValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
