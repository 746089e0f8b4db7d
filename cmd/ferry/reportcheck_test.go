package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/report"
	"github.com/ferry-updates/ferry/store"
)

// cmdReportcheck implements "reportcheck DB STATEDIR": the server's
// database holds every line of the installation's audit log, each once,
// with its seq, prev and hash, and nothing else (R66).
func cmdReportcheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: reportcheck DB STATEDIR")
	}
	dir := ts.MkAbs(args[1])
	cred, err := report.LoadCredentials(dir)
	ts.Check(err)
	f, err := os.Open(filepath.Join(dir, report.AuditFile))
	ts.Check(err)
	defer f.Close()
	var recs []audit.Record
	_, err = audit.Read(f, audit.Start, func(r audit.Record) error { recs = append(recs, r); return nil })
	ts.Check(err)
	ctx := context.Background()
	st, err := store.Open(ctx, ts.MkAbs(args[0]))
	ts.Check(err)
	defer st.Close()
	evs, err := st.QueryEvents(ctx, store.EventQuery{InstallID: cred.InstallID, Limit: store.MaxLimit})
	ts.Check(err)
	if len(evs) != len(recs) {
		ts.Fatalf("the server has %d events of %s, its audit log %d lines", len(evs), cred.InstallID, len(recs))
	}
	byseq := map[uint64]store.Event{}
	for _, e := range evs {
		byseq[e.Seq] = e
	}
	prev := audit.Genesis
	for _, r := range recs {
		e, ok := byseq[r.Seq]
		if !ok || e.Prev != prev || e.Prev != r.Prev || e.Kind != r.Kind || e.App != r.App || e.Version != r.Version {
			ts.Fatalf("seq %d: the server has %+v, the log %+v", r.Seq, e, r)
		}
		prev = e.Hash
	}
	ts.Logf("the server has all %d events of the audit log, once each", len(recs))
}
