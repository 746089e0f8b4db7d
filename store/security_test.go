package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func testSecurityEvents(t *testing.T, b backend) {
	s := b.newStore(t)
	ctx := context.Background()
	a, c := randomHex(t, 16), randomHex(t, 16)
	enroll(t, s, a, c)
	t0 := time.Unix(1_800_000_000, 0).UTC()
	e1 := SecurityEvent{InstallID: a, Time: t0, Kind: "report.log_rewritten", Cause: "seq 3 has another hash", Evidence: map[string]string{"seq": "3"}}
	e2 := SecurityEvent{InstallID: c, Time: t0.Add(time.Second), Kind: "report.log_rewritten", Cause: "x"}
	for _, e := range []SecurityEvent{e2, e1, e1} {
		if err := s.RecordSecurity(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListSecurity(ctx, "", 0)
	if err != nil || len(all) != 2 || all[1].InstallID != a || all[1].Evidence["seq"] != "3" || !all[1].Time.Equal(t0) || all[0].Evidence != nil {
		t.Fatalf("ListSecurity = %+v, %v", all, err)
	}
	if one, _ := s.ListSecurity(ctx, c, 0); len(one) != 1 || one[0].Cause != "x" {
		t.Fatalf("ListSecurity(c) = %+v", one)
	}
	if newest, _ := s.ListSecurity(ctx, "", 1); len(newest) != 1 || newest[0].InstallID != c {
		t.Fatalf("ListSecurity(limit 1) = %+v, want the newest (of c)", newest)
	}
	err = s.RecordSecurity(ctx, SecurityEvent{InstallID: randomHex(t, 16), Time: t0, Kind: "k"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("a security event of an installation not enrolled: %v, want ErrNotFound", err)
	}
	if err := s.RecordSecurity(ctx, SecurityEvent{InstallID: a}); err == nil {
		t.Fatal("a security event without kind and time was stored")
	}
}
