package report

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

func TestMain(m *testing.M) {
	if os.Getenv("FERRY_REPORT_HELPER") != "" {
		os.Exit(helper())
	}
	os.Exit(m.Run())
}

// helper is the agent side in a process of its own: it reports
// FERRY_REPORT_N events from FERRY_REPORT_STATE, sending after each, and
// kills itself (SIGKILL) at the FERRY_REPORT_KILL step ("step:k", the k-th
// time the step is reached).
func helper() int {
	if kill := os.Getenv("FERRY_REPORT_KILL"); kill != "" {
		step, ks, _ := strings.Cut(kill, ":")
		k, _ := strconv.Atoi(ks)
		seen := 0
		failpoint = func(s string) {
			if s == step {
				if seen++; seen == k {
					p, _ := os.FindProcess(os.Getpid())
					p.Kill()
					select {}
				}
			}
		}
	}
	r, err := Open(Options{StateDir: os.Getenv("FERRY_REPORT_STATE")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	n, _ := strconv.Atoi(os.Getenv("FERRY_REPORT_N"))
	ctx := context.Background()
	for i := range n {
		r.Observe(event.Event{Time: time.Now(), Kind: event.CheckStarted, App: "hello", Version: fmt.Sprintf("1.0.%d", i)})
		r.Flush(ctx) // a failure leaves the lines queued
	}
	if err := r.Flush(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := r.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// site is a reporting server on 127.0.0.1 over HTTPS, on a SQLite store.
type site struct {
	st  store.Store
	srv *httptest.Server
	ca  string
}

func newSite(t *testing.T) *site {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := server.Reporting(server.ReportConfig{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		CredentialRate: server.Rate{Burst: 1000, Every: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	return &site{st: st, srv: srv, ca: ca}
}

// enroll makes a state directory enrolled with the site.
func (s *site) enroll(t *testing.T) (dir, id string) {
	t.Helper()
	secret, tok, err := server.NewEnrollToken(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(s.srv.URL, []byte(s.ca))
	if err != nil {
		t.Fatal(err)
	}
	id = fmt.Sprintf("%032x", time.Now().UnixNano())
	cred, err := c.Enroll(context.Background(), secret, id, "host", []App{{App: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	cred.CA = s.ca
	dir = t.TempDir()
	if err := cred.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir, id
}

func runHelper(t *testing.T, dir string, n int, kill string) error {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_REPORT_HELPER=1", "FERRY_REPORT_STATE="+dir,
		"FERRY_REPORT_N="+strconv.Itoa(n), "FERRY_REPORT_KILL="+kill)
	out, err := cmd.CombinedOutput()
	if err != nil && kill == "" {
		t.Logf("helper: %s", out)
	}
	return err
}

// delivered checks that the server has every line of the audit log, each
// once, with its seq and hash, and nothing else, and that nothing is queued.
func (s *site) delivered(t *testing.T, dir, id string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []audit.Record
	_, err = audit.Read(f, audit.Start, func(rec audit.Record) error {
		want = append(want, rec)
		return nil
	})
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	evs, err := s.st.QueryEvents(context.Background(), store.EventQuery{InstallID: id, Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(want) {
		t.Fatalf("the server has %d events, the audit log %d lines", len(evs), len(want))
	}
	byseq := map[uint64]store.Event{}
	for _, e := range evs {
		byseq[e.Seq] = e
	}
	prev := audit.Genesis
	var received time.Time
	for _, rec := range want {
		e, ok := byseq[rec.Seq]
		if !ok || e.Prev != prev || e.Version != rec.Version || e.Kind != rec.Kind {
			t.Errorf("seq %d: server has %+v, log has %+v", rec.Seq, e, rec)
		}
		if e.Received.Before(received) {
			t.Errorf("seq %d arrived before seq %d", rec.Seq, rec.Seq-1)
		}
		prev, received = e.Hash, e.Received
	}
	head, _ := s.st.ChainHead(context.Background(), id)
	if head.Seq != uint64(len(want)) {
		t.Errorf("server chain head %d, log has %d lines", head.Seq, len(want))
	}
	qs, err := ReadStats(filepath.Join(dir, QueueDir))
	if err != nil || qs.Depth != 0 || qs.Acked.Seq != uint64(len(want)) || qs.Dropped != 0 {
		t.Errorf("queue after delivery: %+v %v", qs, err)
	}
	return len(want)
}

// TestKillAtEveryStep_R66: the agent side is SIGKILLed at every step of
// an append (audit line written but not queued, queue line torn, queued)
// and of a send (stored by the server but not acknowledged, acknowledged
// but segments not removed); started again, it delivers every event of
// its audit log exactly once, in order.
func TestKillAtEveryStep_R66(t *testing.T) {
	s := newSite(t)
	steps := []string{"audit.appended", "queue.torn", "queue.appended", "send.stored", "ack.saved"}
	for _, step := range steps {
		for _, k := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s:%d", step, k), func(t *testing.T) {
				dir, id := s.enroll(t)
				err := runHelper(t, dir, 6, fmt.Sprintf("%s:%d", step, k))
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Exited() {
					t.Fatalf("the helper was not killed at %s:%d: %v", step, k, err)
				}
				if err := runHelper(t, dir, 3, ""); err != nil {
					t.Fatalf("after the kill: %v", err)
				}
				if n := s.delivered(t, dir, id); n < 3+k-1 {
					t.Fatalf("only %d events in the log", n)
				}
			})
		}
	}
}

// TestServerDown_R66: while the server is unreachable events stay queued
// (Flush fails, nothing is lost); once it is back they all arrive once.
func TestServerDown_R66(t *testing.T) {
	s := newSite(t)
	dir, id := s.enroll(t)
	if err := runHelper(t, dir, 2, ""); err != nil {
		t.Fatal(err)
	}
	url := s.srv.URL
	s.srv.Close()
	if err := runHelper(t, dir, 5, ""); err == nil {
		t.Fatal("delivery to a stopped server succeeded")
	}
	if qs, _ := ReadStats(filepath.Join(dir, QueueDir)); qs.Depth != 5 || qs.Acked.Seq != 2 {
		t.Fatalf("queue while the server is down: %+v", qs)
	}
	// The server again, on the same address.
	h := s.srv.Config.Handler
	srv := httptest.NewUnstartedServer(h)
	l, err := listen(strings.TrimPrefix(url, "https://"))
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", url, err)
	}
	srv.Listener = l
	srv.TLS = s.srv.TLS
	srv.StartTLS()
	defer srv.Close()
	if err := runHelper(t, dir, 1, ""); err != nil {
		t.Fatal(err)
	}
	if n := s.delivered(t, dir, id); n != 8 {
		t.Fatalf("%d events delivered, want 8", n)
	}
}

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// TestReporterDropsCounted_R66: with nothing sent (no uploader running)
// and the queue at its bound, the oldest lines are dropped, counted, and
// report.dropped events say so in the audit log, queued like any other;
// once sent, everything kept arrives and the gap is the dropped count.
func TestReporterDropsCounted_R66(t *testing.T) {
	s := newSite(t)
	dir, id := s.enroll(t)
	r, err := Open(Options{StateDir: dir, Queue: QueueOptions{MaxCount: 16}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 40 {
		r.Observe(event.Event{Time: time.Now(), Kind: event.CheckStarted, App: "hello", Version: fmt.Sprintf("1.0.%d", i)})
	}
	st := r.Stats()
	if st.Dropped == 0 || st.Depth > 16 {
		t.Fatalf("queue at its bound: %+v", st)
	}
	f, _ := os.Open(filepath.Join(dir, AuditFile))
	defer f.Close()
	drops, lines := 0, 0
	audit.Read(f, audit.Start, func(rec audit.Record) error {
		lines++
		if rec.Kind == Dropped {
			n, _ := strconv.Atoi(rec.Evidence["lines"])
			drops += n
		}
		return nil
	})
	if drops != st.Dropped {
		t.Fatalf("report.dropped events count %d lines, the queue dropped %d", drops, st.Dropped)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.st.QueryEvents(context.Background(), store.EventQuery{InstallID: id, Limit: store.MaxLimit})
	if len(evs)+st.Dropped != lines {
		t.Fatalf("server has %d events, %d dropped, the log %d lines", len(evs), st.Dropped, lines)
	}
	if !hasKind(evs, Dropped) {
		t.Fatal("the report.dropped event did not reach the server")
	}
}

func hasKind(evs []store.Event, k event.Kind) bool {
	for _, e := range evs {
		if e.Kind == k {
			return true
		}
	}
	return false
}
