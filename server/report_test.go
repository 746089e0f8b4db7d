package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/store"
)

type reportFixture struct {
	st   store.Store
	srv  *httptest.Server
	logs *lockedBuffer
	now  time.Time
	mu   sync.Mutex
}

func newReportFixture(t *testing.T, tweak func(*ReportConfig)) *reportFixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &reportFixture{st: st, logs: &lockedBuffer{}, now: time.Now()}
	cfg := ReportConfig{Store: st, Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), Now: f.clock}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := Reporting(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewTLSServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *reportFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *reportFixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// token stores a new enrollment token and returns its secret.
func (f *reportFixture) token(t *testing.T, tweak func(*store.Token)) (string, store.Token) {
	t.Helper()
	secret, tok, err := NewEnrollToken(f.clock())
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&tok)
	}
	if err := f.st.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return secret, tok
}

func (f *reportFixture) post(t *testing.T, path, auth string, body any) (int, http.Header, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	default:
		b, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+path, bytes.NewReader(b))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

var (
	idA = strings.Repeat("a", 32)
	idB = strings.Repeat("b", 32)
)

// enroll enrolls id and returns its credential.
func (f *reportFixture) enroll(t *testing.T, secret, id string) string {
	t.Helper()
	code, _, body := f.post(t, "/api/v1/enroll", secret, EnrollRequest{InstallID: id, Hostname: "h1", Apps: []App{{App: "hello", Version: "1.0.0", Channel: "stable"}}})
	if code != http.StatusOK {
		t.Fatalf("enroll %s: %d %s", id, code, body)
	}
	var ans EnrollAnswer
	if err := json.Unmarshal(body, &ans); err != nil || ans.InstallID != id || !strings.HasPrefix(ans.Credential, "ferryi_"+id+".") {
		t.Fatalf("enroll answer %s: %v", body, err)
	}
	return ans.Credential
}

// auditLines writes n events to a real audit log and returns its lines.
func auditLines(t *testing.T, n int) []string {
	t.Helper()
	var lines []string
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{
		OnAppend: func(line []byte, _ audit.State) { lines = append(lines, string(line)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range n {
		l.Observe(event.Event{Time: time.Now(), Kind: event.InstallDone, App: "hello", Version: fmt.Sprintf("1.0.%d", i)})
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestEnrollAndReport(t *testing.T) {
	f := newReportFixture(t, nil)
	secret, tok := f.token(t, func(tk *store.Token) { tk.MaxUses = 2 })
	cred := f.enroll(t, secret, idA)
	lines := auditLines(t, 5)
	code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: lines[:3]})
	if code != http.StatusOK {
		t.Fatalf("events: %d %s", code, body)
	}
	var ans EventsAnswer
	json.Unmarshal(body, &ans)
	if ans.Added != 3 || ans.Head.Seq != 3 {
		t.Fatalf("answer %s", body)
	}
	// Resent with two more: the first three count once.
	code, _, body = f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: lines})
	json.Unmarshal(body, &ans)
	if code != http.StatusOK || ans.Added != 2 || ans.Head.Seq != 5 {
		t.Fatalf("resend: %d %s", code, body)
	}
	evs, err := f.st.QueryEvents(context.Background(), store.EventQuery{InstallID: idA})
	if err != nil || len(evs) != 5 {
		t.Fatalf("stored %d events, %v", len(evs), err)
	}
	head, _ := f.st.ChainHead(context.Background(), idA)
	if head.Seq != 5 || head.Hash != ans.Head.Hash {
		t.Fatalf("chain head %+v, answer %+v", head, ans.Head)
	}
	ts, _ := f.st.ListTokens(context.Background())
	if len(ts) != 1 || ts[0].ID != tok.ID || ts[0].Uses != 1 {
		t.Fatalf("token uses not counted: %+v", ts)
	}
	if strings.Contains(f.logs.String(), secret) || strings.Contains(f.logs.String(), cred) {
		t.Fatal("a secret reached the log")
	}
}

// TestReportOtherInstallation_R64: a credential reports only for its own
// installation: a batch naming another one is refused and stores nothing.
func TestReportOtherInstallation_R64(t *testing.T) {
	f := newReportFixture(t, nil)
	secret, _ := f.token(t, nil)
	credA := f.enroll(t, secret, idA)
	credB := f.enroll(t, secret, idB)
	lines := auditLines(t, 2)
	if code, _, body := f.post(t, "/api/v1/events", credB, EventsRequest{InstallID: idA, Lines: lines}); code != http.StatusForbidden {
		t.Fatalf("B's credential for A: %d %s, want 403", code, body)
	}
	// A's install ID with B's secret part: not A's credential.
	forged := "ferryi_" + idA + credB[strings.Index(credB, "."):]
	if code, _, body := f.post(t, "/api/v1/events", forged, EventsRequest{InstallID: idA, Lines: lines}); code != http.StatusUnauthorized {
		t.Fatalf("forged credential: %d %s, want 401", code, body)
	}
	if evs, _ := f.st.QueryEvents(context.Background(), store.EventQuery{}); len(evs) != 0 {
		t.Fatalf("refused batches stored %d events", len(evs))
	}
	if code, _, body := f.post(t, "/api/v1/events", credA, EventsRequest{InstallID: idA, Lines: lines}); code != http.StatusOK {
		t.Fatalf("A's own: %d %s", code, body)
	}
	if !strings.Contains(f.logs.String(), "report.wrong_installation") {
		t.Fatal("the wrong-installation report is not logged")
	}
}

// TestReportAuth_R53: both endpoints refuse a missing, malformed, unknown
// or wrong credential with 401, and nothing is stored.
func TestReportAuth_R53(t *testing.T) {
	f := newReportFixture(t, nil)
	secret, _ := f.token(t, nil)
	cred := f.enroll(t, secret, idA)
	lines := auditLines(t, 1)
	for _, auth := range []string{"", "x", cred + "x", "ferryi_" + idB + ".AAAA", secret, strings.Repeat("f", 500)} {
		if code, h, body := f.post(t, "/api/v1/events", auth, EventsRequest{InstallID: idA, Lines: lines}); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("events with %q: %d %s, want 401", auth, code, body)
		}
		if auth == secret {
			continue
		}
		if code, _, body := f.post(t, "/api/v1/enroll", auth, EnrollRequest{InstallID: idB}); code != http.StatusUnauthorized {
			t.Errorf("enroll with %q: %d %s, want 401", auth, code, body)
		}
	}
	if code, _, _ := f.post(t, "/api/v1/enroll", cred, EnrollRequest{InstallID: idB}); code != http.StatusUnauthorized {
		t.Errorf("enroll with a credential: %d, want 401", code)
	}
	if _, err := f.st.Installation(context.Background(), idB); err == nil {
		t.Fatal("a refused enrollment enrolled")
	}
	if evs, _ := f.st.QueryEvents(context.Background(), store.EventQuery{}); len(evs) != 0 {
		t.Fatalf("refused batches stored %d events", len(evs))
	}
}

// TestEnrollTokenDefaultExpiry_R69: an enrollment token made without an
// expiry of its own (NewEnrollToken, as ferry token create --enroll makes
// it without --expires) enrolls until EnrollTokenLifetime has passed, and
// nothing after: a leaked token nobody revokes does not enroll forever.
func TestEnrollTokenDefaultExpiry_R69(t *testing.T) {
	f := newReportFixture(t, nil)
	secret, tok := f.token(t, nil)
	if want := tok.Created.Add(EnrollTokenLifetime); !tok.Expires.Equal(want) {
		t.Errorf("new token expires %v, want %v", tok.Expires, want)
	}
	f.advance(EnrollTokenLifetime - time.Minute)
	f.enroll(t, secret, idA)
	f.advance(time.Minute)
	code, _, body := f.post(t, "/api/v1/enroll", secret, EnrollRequest{InstallID: idB, Apps: []App{{App: "hello"}}})
	if code != http.StatusUnauthorized || !strings.Contains(string(body), "expired") {
		t.Errorf("enroll %v after the token was made: %d %s, want 401 expired", EnrollTokenLifetime, code, body)
	}
}

// TestEnrollToken_R69: an enrollment token that expired, was revoked or
// has used up its uses enrolls nothing; each use is counted; a scoped
// token enrolls only its application; the same install ID enrolls once.
func TestEnrollToken_R69(t *testing.T) {
	f := newReportFixture(t, nil)
	ctx := context.Background()
	expired, _ := f.token(t, func(tk *store.Token) { tk.Expires = f.clock().Add(time.Hour) })
	revoked, rt := f.token(t, nil)
	once, ot := f.token(t, func(tk *store.Token) { tk.MaxUses = 1 })
	scoped, _ := f.token(t, func(tk *store.Token) { tk.Scope = "other" })
	f.advance(2 * time.Hour)
	if err := f.st.RevokeToken(ctx, rt.ID, f.clock()); err != nil {
		t.Fatal(err)
	}
	ids := []string{strings.Repeat("1", 32), strings.Repeat("2", 32), strings.Repeat("3", 32)}
	for _, c := range []struct {
		name, secret, want string
		code               int
	}{
		{"expired", expired, "expired", 401},
		{"revoked", revoked, "revoked", 401},
		{"scoped", scoped, "for application other", 403},
	} {
		code, _, body := f.post(t, "/api/v1/enroll", c.secret, EnrollRequest{InstallID: ids[0], Apps: []App{{App: "hello"}}})
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("%s token: %d %s, want %d %q", c.name, code, body, c.code, c.want)
		}
	}
	f.enroll(t, once, ids[0])
	if code, _, body := f.post(t, "/api/v1/enroll", once, EnrollRequest{InstallID: ids[1]}); code != 401 || !strings.Contains(string(body), "no uses left") {
		t.Errorf("used-up token: %d %s", code, body)
	}
	all, _ := f.st.ListTokens(ctx)
	for _, tk := range all {
		if tk.ID == ot.ID && tk.Uses != 1 {
			t.Errorf("one-use token counted %d uses", tk.Uses)
		}
	}
	other, _ := f.token(t, nil)
	if code, _, body := f.post(t, "/api/v1/enroll", other, EnrollRequest{InstallID: ids[0]}); code != http.StatusConflict {
		t.Errorf("second enrollment of one install ID: %d %s, want 409", code, body)
	}
	if ins, _ := f.st.ListInstallations(ctx, store.InstallationQuery{}); len(ins) != 1 {
		t.Fatalf("%d installations enrolled, want 1", len(ins))
	}
}

// TestEnrollRevokedInstallation_R69: an installation revoked on its own
// that enrolls again (its credentials file removed, a new token) is told
// it was revoked and what to do (403), not that it is enrolled already
// (409, whose client hint lists ways that cannot work for it); no use of
// the token is taken.
func TestEnrollRevokedInstallation_R69(t *testing.T) {
	f := newReportFixture(t, nil)
	ctx := context.Background()
	first, _ := f.token(t, nil)
	f.enroll(t, first, idA)
	if err := f.st.RevokeInstallation(ctx, idA, f.clock()); err != nil {
		t.Fatal(err)
	}
	again, tok := f.token(t, func(tk *store.Token) { tk.MaxUses = 1 })
	code, _, body := f.post(t, "/api/v1/enroll", again, EnrollRequest{InstallID: idA, Apps: []App{{App: "hello"}}})
	if want := "this install ID was revoked (ferry installation revoke): enroll from a new state directory"; code != http.StatusForbidden || !strings.Contains(string(body), want) {
		t.Fatalf("enrollment of a revoked installation: %d %s, want 403 %q", code, body, want)
	}
	f.enroll(t, again, idB) // the token's one use is still there
	if all, _ := f.st.ListTokens(ctx); !slices.ContainsFunc(all, func(t store.Token) bool { return t.ID == tok.ID && t.Uses == 1 }) {
		t.Errorf("token uses after a refused and an accepted enrollment: %+v, want 1", all)
	}
}

// TestReportRewritten_R65: a batch whose seq goes back with another hash,
// or whose first line does not continue the stored chain, is refused
// whole and logged as a security event.
func TestReportRewritten_R65(t *testing.T) {
	f := newReportFixture(t, nil)
	secret, _ := f.token(t, nil)
	cred := f.enroll(t, secret, idA)
	lines := auditLines(t, 3)
	if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: lines[:2]}); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	other := auditLines(t, 3) // another log: same seqs, other hashes
	if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: other[1:2]}); code != http.StatusConflict {
		t.Fatalf("seq 2 with another hash: %d %s, want 409", code, body)
	}
	f.advance(time.Second)
	if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: other[2:]}); code != http.StatusConflict {
		t.Fatalf("seq 3 not continuing seq 2: %d %s, want 409", code, body)
	}
	if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: []string{lines[0], lines[2]}}); code != 200 {
		t.Fatalf("a gap (dropped events) is accepted: %d %s", code, body)
	}
	if n := strings.Count(f.logs.String(), SecurityRewritten); n != 2 {
		t.Fatalf("%d rewritten-log security events logged, want 2", n)
	}
	sec, err := f.st.ListSecurity(context.Background(), idA, 0)
	if err != nil || len(sec) != 2 || sec[0].Kind != SecurityRewritten || !strings.Contains(sec[0].Cause, "seq 2") {
		t.Fatalf("security events stored: %+v, %v", sec, err)
	}
	if code, _, _ := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: []string{lines[0] + " "}}); code != http.StatusBadRequest {
		t.Fatalf("a non-canonical line: %d, want 400", code)
	}
}

// TestReportOversized_R54: a body over the limit is 413 from its
// Content-Length before it is read, and as soon as a chunked one crosses it.
func TestReportOversized_R54(t *testing.T) {
	const limit = 4 << 10
	f := newReportFixture(t, func(c *ReportConfig) { c.MaxBody = limit })
	secret, _ := f.token(t, nil)
	cred := f.enroll(t, secret, idA)
	h, _ := Reporting(ReportConfig{Store: f.st, MaxBody: limit, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, path := range []string{"/api/v1/events", "/api/v1/enroll"} {
		auth := cred
		if path == "/api/v1/enroll" {
			auth = secret
		}
		declared := &countingBody{}
		req := httptest.NewRequest("POST", path, declared)
		req.ContentLength = 10 << 30
		req.Header.Set("Authorization", "Bearer "+auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || declared.n.Load() != 0 {
			t.Errorf("%s declared 10 GiB: %d after reading %d bytes, want 413 after none", path, rec.Code, declared.n.Load())
		}
		endless := &countingBody{prefix: `{"install_id":"` + idA + `","lines":["`}
		req = httptest.NewRequest("POST", path, endless)
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+auth)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || endless.n.Load() > MaxEnrollRequest+limit+64<<10 {
			t.Errorf("%s endless body: %d after reading %d bytes, want 413", path, rec.Code, endless.n.Load())
		}
	}
	big := fmt.Sprintf(`{"install_id":%q,"lines":[%q]}`, idA, strings.Repeat("x", limit))
	if code, _, _ := f.post(t, "/api/v1/events", cred, []byte(big)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over HTTPS: %d, want 413", code)
	}
}

// TestReportFlood_R55: past its rate a credential gets 429 with
// Retry-After, and so does an address; other credentials are not slowed.
func TestReportFlood_R55(t *testing.T) {
	f := newReportFixture(t, func(c *ReportConfig) {
		c.CredentialRate = Rate{Burst: 3, Every: time.Minute}
		c.IPRate = Rate{Burst: 12, Every: time.Minute}
	})
	secret, _ := f.token(t, nil)
	credA := f.enroll(t, secret, idA)
	credB := f.enroll(t, secret, idB)
	codes := map[int]int{}
	var retry string
	for range 5 {
		code, h, _ := f.post(t, "/api/v1/events", credA, EventsRequest{InstallID: idA})
		codes[code]++
		if code == http.StatusTooManyRequests {
			retry = h.Get("Retry-After")
		}
	}
	if codes[200] != 3 || codes[429] != 2 || retry == "" || retry == "0" {
		t.Fatalf("credential flood: %v, Retry-After %q; want 3 x 200 then 429 with Retry-After", codes, retry)
	}
	if code, _, body := f.post(t, "/api/v1/events", credB, EventsRequest{InstallID: idB}); code != 200 {
		t.Fatalf("another credential during A's flood: %d %s", code, body)
	}
	// The address is charged for refused requests only: the two 429s so
	// far; 10 more refusals pass, then 429 for everything from it, even
	// a good credential, until the bucket refills.
	for i := range 12 {
		code, h, _ := f.post(t, "/api/v1/events", "", nil)
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if code != want || (code == 429 && h.Get("Retry-After") == "") {
			t.Fatalf("address flood, request %d: %d, want %d", i, code, want)
		}
	}
	if code, _, _ := f.post(t, "/api/v1/events", credB, EventsRequest{InstallID: idB}); code != http.StatusTooManyRequests {
		t.Fatalf("a good credential from the flooding address: %d, want 429", code)
	}
	f.advance(time.Hour)
	if code, _, _ := f.post(t, "/api/v1/events", credA, EventsRequest{InstallID: idA}); code != 200 {
		t.Fatalf("after the wait: %d", code)
	}
}

// TestReportFleetBehindOneAddress_R55: many installations behind one
// address (a NAT) are limited each at its own rate, not together: far
// more accepted batches than the address's bucket of refusals holds all
// pass, and so do enrollments past it; only refusals empty that bucket
// (every request counts against the address's much higher ceiling,
// TestReportAddressCeiling_R55).
func TestReportFleetBehindOneAddress_R55(t *testing.T) {
	f := newReportFixture(t, func(c *ReportConfig) {
		c.CredentialRate = Rate{Burst: 2, Every: time.Minute}
		c.IPRate = Rate{Burst: 5, Every: time.Minute}
	})
	secret, _ := f.token(t, nil)
	var creds []string
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("%032x", i+1)
		ids, creds = append(ids, id), append(creds, f.enroll(t, secret, id))
	}
	for round := range 2 {
		for i, cred := range creds {
			if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: ids[i]}); code != http.StatusOK {
				t.Fatalf("round %d, installation %d of the fleet behind one address: %d %s", round, i, code, body)
			}
		}
	}
	// 20 enrollments and 40 batches passed an address bucket of 5; now
	// its refusals count.
	for i := range 6 {
		code, _, _ := f.post(t, "/api/v1/events", "ferryi_"+ids[0]+".wrong", EventsRequest{InstallID: ids[0]})
		want := http.StatusUnauthorized
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if code != want {
			t.Fatalf("wrong credential %d from the fleet's address: %d, want %d", i, code, want)
		}
	}
}

// TestReportTokenFleetBounded_R55: with the default rates, the
// installations one enrollment token enrolled share one bucket for their
// batches: 55 installations from one address, each within its own burst
// of 20, get 1,000 batches accepted at one instant, not 1,100 (review 9
// F3: one address and one default token had every batch accepted); the
// installations of another token still report.
func TestReportTokenFleetBounded_R55(t *testing.T) {
	f := newReportFixture(t, nil) // default rates; the clock stands still
	secret, _ := f.token(t, nil)
	lines := auditLines(t, 1)
	accepted, refused := 0, 0
	for i := range 55 {
		id := fmt.Sprintf("%032x", 0x1000+i)
		cred := f.enroll(t, secret, id)
		for range 20 {
			code, h, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id, Lines: lines})
			switch {
			case code == http.StatusOK:
				accepted++
			case code == http.StatusTooManyRequests && h.Get("Retry-After") != "":
				refused++
			default:
				t.Fatalf("batch of %s: %d %s", id, code, body)
			}
		}
	}
	if accepted != DefaultTokenReportRate.Burst || refused != 1100-DefaultTokenReportRate.Burst {
		t.Fatalf("one token's installations at one instant: %d accepted, %d refused; want %d accepted, the rest 429", accepted, refused, DefaultTokenReportRate.Burst)
	}
	// The fleet's 429s are not the address's refusals: 500 more past the
	// token's rate (more than the address's bucket of refusals holds)
	// leave the address open to the installations of another token.
	for i := range 25 {
		id := fmt.Sprintf("%032x", 0x4000+i)
		cred := f.enroll(t, secret, id)
		for range 20 {
			if code, _, _ := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id, Lines: lines}); code != http.StatusTooManyRequests {
				t.Fatalf("past the token's rate: %d", code)
			}
		}
	}
	other, _ := f.token(t, nil)
	id := fmt.Sprintf("%032x", 0x2000)
	if code, _, body := f.post(t, "/api/v1/events", f.enroll(t, other, id), EventsRequest{InstallID: id, Lines: lines}); code != http.StatusOK {
		t.Fatalf("an installation of another token: %d %s", code, body)
	}
	f.advance(time.Second)
	if code, _, body := f.post(t, "/api/v1/events", f.enroll(t, secret, fmt.Sprintf("%032x", 0x3000)), EventsRequest{InstallID: fmt.Sprintf("%032x", 0x3000), Lines: lines}); code != http.StatusOK {
		t.Fatalf("the first token's installation a second later: %d %s", code, body)
	}
}

// TestReportAddressCeiling_R55: every request from one address, accepted
// ones included, takes from the address's ceiling (AddressRate): with
// enough tokens and installations to pass every other limit, the
// address is refused with 429 past the ceiling, enrollments and batches
// alike, until it refills; another address is not.
func TestReportAddressCeiling_R55(t *testing.T) {
	f := newReportFixture(t, func(c *ReportConfig) { c.AddressRate = Rate{Burst: 30, Every: time.Minute} })
	lines := auditLines(t, 1)
	accepted := 0
	var last int
	for i := range 10 {
		secret, _ := f.token(t, nil)
		id := fmt.Sprintf("%032x", 0x1000+i)
		code, _, body := f.post(t, "/api/v1/enroll", secret, EnrollRequest{InstallID: id, Apps: []App{{App: "hello", Version: "1.0.0", Channel: "stable"}}})
		if last = code; code != http.StatusOK {
			break
		}
		accepted++
		var ans EnrollAnswer
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if last, _, _ = f.post(t, "/api/v1/events", ans.Credential, EventsRequest{InstallID: id, Lines: lines}); last != http.StatusOK {
				break
			}
			accepted++
		}
		if last != http.StatusOK {
			break
		}
	}
	if accepted != 30 || last != http.StatusTooManyRequests {
		t.Fatalf("one address: %d requests accepted, then %d; want 30, then 429", accepted, last)
	}
	// The ceiling is the address's: the same handler from another address.
	h := f.srv.Config.Handler
	secret, _ := f.token(t, nil)
	b, _ := json.Marshal(EnrollRequest{InstallID: fmt.Sprintf("%032x", 0x2000), Apps: []App{{App: "hello", Version: "1.0.0", Channel: "stable"}}})
	req := httptest.NewRequest("POST", "/api/v1/enroll", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.RemoteAddr = "192.0.2.7:4000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("another address: %d %s", rec.Code, rec.Body)
	}
	f.advance(time.Minute)
	secret, _ = f.token(t, nil)
	f.enroll(t, secret, fmt.Sprintf("%032x", 0x3000))
}

// TestReportEnrollRate_R55: an enrollment token has a rate of its own
// (429 with Retry-After past it), which another token does not share.
func TestReportEnrollRate_R55(t *testing.T) {
	f := newReportFixture(t, func(c *ReportConfig) { c.EnrollRate = Rate{Burst: 3, Every: time.Minute} })
	a, _ := f.token(t, nil)
	b, _ := f.token(t, nil)
	for i := range 3 {
		f.enroll(t, a, fmt.Sprintf("%032x", i+1))
	}
	code, h, _ := f.post(t, "/api/v1/enroll", a, EnrollRequest{InstallID: fmt.Sprintf("%032x", 4)})
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("4th enrollment with a token of burst 3: %d (Retry-After %q), want 429 with Retry-After", code, h.Get("Retry-After"))
	}
	f.enroll(t, b, fmt.Sprintf("%032x", 5))
	f.advance(time.Minute)
	f.enroll(t, a, fmt.Sprintf("%032x", 4))
}

// TestReportMetrics: each accepted batch is a check-in, and each new event
// is counted by kind once; a resent batch adds check-ins, not events.
func TestReportMetrics(t *testing.T) {
	m, err := NewMetrics(MetricsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := newReportFixture(t, func(c *ReportConfig) { c.Metrics = m })
	secret, _ := f.token(t, nil)
	cred := f.enroll(t, secret, idA)
	lines := auditLines(t, 3)
	for _, batch := range [][]string{lines[:2], lines, lines} {
		if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: batch}); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	const token = "0123456789abcdef0123"
	h, err := m.Handler(token)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", MetricsPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, want := range []string{"ferry_checkins_total 3\n", "ferry_events_total{kind=\"install.done\"} 3\n", "ferry_installs_total{app=\"_other\"} 3\n",
		"ferry_security_events_total{kind=\"report.log_rewritten\"} 0\n"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestReportRewrittenCounted_R65: a security event the server finds itself
// (a batch that rewrites the stored chain, store.RecordSecurity) is counted
// in ferry_security_events_total, the series the alert on a spike of
// security events watches, once per refused batch.
func TestReportRewrittenCounted_R65(t *testing.T) {
	m, err := NewMetrics(MetricsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := newReportFixture(t, func(c *ReportConfig) { c.Metrics = m })
	secret, _ := f.token(t, nil)
	cred := f.enroll(t, secret, idA)
	lines, other := auditLines(t, 3), auditLines(t, 3)
	if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: lines[:2]}); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for i := range 2 {
		f.advance(time.Second)
		if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: idA, Lines: other[1+i : 2+i]}); code != http.StatusConflict {
			t.Fatalf("a rewritten line: %d %s, want 409", code, body)
		}
	}
	const token = "0123456789abcdef0123"
	h, err := m.Handler(token)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", MetricsPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if want := "ferry_security_events_total{kind=\"report.log_rewritten\"} 2\n"; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics lack %q:\n%s", want, grepLines(rec.Body.String(), "ferry_security_events_total"))
	}
	if sec, err := f.st.ListSecurity(context.Background(), idA, 0); err != nil || len(sec) != 2 {
		t.Errorf("security events stored: %+v, %v", sec, err)
	}
}

// grepLines returns the lines of s that contain substr.
func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
