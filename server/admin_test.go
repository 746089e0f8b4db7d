package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

func TestAdminAuth_R53(t *testing.T) {
	f := newAdminFixture(t, nil)
	s := f.signed(t, "1.1.0", "hello 1.1.0")
	ctype, body := multipartBody(t, s)
	endpoints := []struct {
		method, path, ctype string
		body                []byte
	}{
		{"GET", "/api/v1/apps/hello/role", "", nil},
		{"POST", "/api/v1/apps/hello/releases", ctype, body},
	}
	before := treeHashes(t, filepath.Join(f.dir, "public"))
	for _, e := range endpoints {
		for _, c := range []struct {
			name, token string
			want        int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"unknown token", "ferry_" + strings.Repeat("A", 43), http.StatusUnauthorized},
			{"hash as token", mustTokens(t, f.tokens)[0].SHA256, http.StatusUnauthorized},
			{"other app's token", f.othr, http.StatusForbidden},
		} {
			resp := f.do(t, e.method, e.path, c.token, e.ctype, e.body)
			if resp.StatusCode != c.want {
				t.Errorf("%s %s with %s: %d, want %d", e.method, e.path, c.name, resp.StatusCode, c.want)
			}
			if c.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %s: 401 without WWW-Authenticate", e.method, e.path, c.name)
			}
		}
	}
	if d := treeDiff(before, treeHashes(t, filepath.Join(f.dir, "public"))); len(d) > 0 {
		t.Fatalf("refused requests changed what is served: %v", d)
	}
	for _, e := range endpoints {
		if resp := f.do(t, e.method, e.path, f.hello, e.ctype, e.body); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with hello's token: %d, want 200", e.method, e.path, resp.StatusCode)
		}
	}
	entries, err := f.repo.List(context.Background())
	if err != nil || len(entries) != 3 {
		t.Fatalf("after the upload the repository lists %v (%v), want 3 targets", entries, err)
	}
	// A revoked token is refused at once.
	id := mustTokens(t, f.tokens)[0].ID
	if _, err := RevokeToken(f.tokens, id); err != nil {
		t.Fatal(err)
	}
	if resp := f.do(t, "GET", "/api/v1/apps/hello/role", f.hello, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", resp.StatusCode)
	}
	for _, secret := range []string{f.hello, f.othr} {
		if strings.Contains(f.logs.String(), secret) {
			t.Fatal("a token appears in the server's logs")
		}
	}
}

func TestAdminOversized_R54(t *testing.T) {
	const limit = 64 << 10
	f := newAdminFixture(t, func(c *AdminConfig) { c.MaxUpload = limit; c.MaxRole = 1 << 20 })
	h, err := Admin(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body *countingBody, length int64, ctype string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/apps/hello/releases", body)
		req.ContentLength = length
		req.Header.Set("Authorization", "Bearer "+f.hello)
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	declared := &countingBody{}
	if rec := post(declared, 10<<30, "multipart/form-data; boundary=b"); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared 10 GiB: %d %s, want 413", rec.Code, rec.Body)
	}
	if n := declared.n.Load(); n != 0 {
		t.Fatalf("declared 10 GiB: the handler read %d bytes before refusing", n)
	}
	// A chunked body: a role part that never ends.
	chunked := &countingBody{prefix: "--b\r\nContent-Disposition: form-data; name=\"role\"\r\n\r\n"}
	if rec := post(chunked, -1, "multipart/form-data; boundary=b"); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("endless body: %d %s, want 413", rec.Code, rec.Body)
	}
	if n := chunked.n.Load(); n > limit+64<<10 {
		t.Fatalf("endless body: the handler read %d bytes, limit %d", n, limit)
	}
	// A valid role, then a file part far longer than the target it signs.
	s := f.signed(t, "1.1.0", "hello 1.1.0")
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	p, _ := mw.CreateFormFile("role", "role.json")
	p.Write(s.Role)
	p, _ = mw.CreateFormFile("file", "artifact")
	p.Write(bytes.Repeat([]byte("y"), 32<<10))
	mw.Close()
	resp := f.do(t, "POST", "/api/v1/apps/hello/releases", f.hello, mw.FormDataContentType(), b.Bytes())
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("file longer than its target: %d, want 413", resp.StatusCode)
	}
	// Over real HTTPS: a declared oversized body is refused.
	big := make([]byte, limit+1)
	if resp := f.do(t, "POST", "/api/v1/apps/hello/releases", f.hello, "multipart/form-data; boundary=b", big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("over HTTPS, %d bytes: %d, want 413", len(big), resp.StatusCode)
	}
	// The pipeline's client declares the length: a release larger than the
	// limit gets a clean 413 before its body is sent.
	bigRel := f.signed(t, "1.2.0", strings.Repeat("z", 2*limit))
	_, err = f.client(t, f.hello).Publish(context.Background(), "hello", bigRel)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("client upload over the limit: %v, want a 413 answer", err)
	}
	left, _ := os.ReadDir(f.cfg.TempDir)
	if len(left) != 0 {
		t.Fatalf("refused uploads left %d entries in the upload directory", len(left))
	}
	if entries, _ := f.repo.List(context.Background()); len(entries) != 2 {
		t.Fatalf("refused uploads published something: %v", entries)
	}
}

func TestAdminFlood_R55(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newAdminFixture(t, func(c *AdminConfig) {
		c.Now = clock
		c.TokenRate = Rate{Burst: 5, Every: 10 * time.Second}
		c.IPRate = Rate{Burst: 20, Every: time.Second}
	})
	codes := make(chan *http.Response, 12)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() { codes <- f.do(t, "GET", "/api/v1/apps/hello/role", f.hello, "", nil) })
	}
	wg.Wait()
	close(codes)
	var ok, limited int
	for resp := range codes {
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 10 {
				t.Errorf("429 with Retry-After %q, want 1-10 seconds", resp.Header.Get("Retry-After"))
			}
		default:
			t.Errorf("flood: status %d", resp.StatusCode)
		}
	}
	if ok != 5 || limited != 7 {
		t.Fatalf("flood of 12 with a burst of 5: %d ok, %d limited", ok, limited)
	}
	// The address's own bucket (20) runs dry too, even for requests without a token.
	var anon429 int
	for range 20 {
		if f.do(t, "GET", "/api/v1/apps/hello/role", "", "", nil).StatusCode == http.StatusTooManyRequests {
			anon429++
		}
	}
	if anon429 == 0 {
		t.Fatal("an address flooding without a token was never limited")
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if resp := f.do(t, "GET", "/api/v1/apps/hello/role", f.hello, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the buckets refill: %d, want 200", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "rate limited") {
		t.Fatal("rate limiting is not logged")
	}
}

func TestAdminUploadRefused_R53(t *testing.T) {
	f := newAdminFixture(t, nil)
	ctx := context.Background()
	c := f.client(t, f.hello)
	good := f.signed(t, "1.1.0", "hello 1.1.0")
	wrongPriv, _ := keys.Generate()
	wrong, _ := keys.NewFileSigner(wrongPriv)
	cur, _ := c.AppRole(ctx, "hello")
	_, err := repo.SignRelease(ctx, []keys.Signer{wrong}, cur, repo.Batch{
		Release: repo.Release{App: "hello", Version: "1.2.0", Platform: "linux/amd64"}, Files: []string{writeTemp(t, "x")}}, repo.SignOptions{})
	if err == nil || !strings.Contains(err.Error(), "did not sign hello's current role (version 1, signed by ") {
		t.Fatalf("SignRelease with a key that never signed the role: %v", err)
	}
	changed := f.signed(t, "1.0.0", "hello 1.0.0") // identical: nothing to sign
	if changed != nil {
		t.Fatal("an identical release was signed again")
	}
	before := treeHashes(t, filepath.Join(f.dir, "public"))
	bad := *good
	bad.Files = []string{writeTemp(t, "hello 1.1.X")}
	resigned := func(k keys.Signer, edit func(*metadata.Metadata[metadata.TargetsType])) *repo.Signed {
		md, err := metadata.Targets().FromBytes(good.Role)
		if err != nil {
			t.Fatal(err)
		}
		edit(md)
		md.ClearSignatures()
		if _, err := md.Sign(keys.TUFSigner(ctx, k)); err != nil {
			t.Fatal(err)
		}
		raw, err := md.ToBytes(false)
		if err != nil {
			t.Fatal(err)
		}
		return &repo.Signed{Role: raw, Files: good.Files}
	}
	v1 := "hello/1.0.0/linux-amd64/hello"
	for _, tc := range []struct {
		name string
		s    *repo.Signed
		want int
		msg  string
	}{
		{"wrong app key", resigned(wrong, func(*metadata.Metadata[metadata.TargetsType]) {}), http.StatusUnprocessableEntity, "is not signed by 1 of its delegated keys"},
		{"path outside the delegation", resigned(f.key, func(md *metadata.Metadata[metadata.TargetsType]) {
			md.Signed.Targets["other/1.1.0/linux-amd64/other"] = md.Signed.Targets["hello/1.1.0/linux-amd64/hello"]
			delete(md.Signed.Targets, "hello/1.1.0/linux-amd64/hello")
		}), http.StatusUnprocessableEntity, "outside the delegation's paths"},
		{"changed published version", resigned(f.key, func(md *metadata.Metadata[metadata.TargetsType]) {
			md.Signed.Targets[v1].Length++
		}), http.StatusConflict, "changes published target " + v1},
		{"file differs", &bad, http.StatusUnprocessableEntity, "no uploaded file for hello/1.1.0"},
		{"no files", &repo.Signed{Role: good.Role}, http.StatusUnprocessableEntity, "no uploaded file for hello/1.1.0"},
		{"garbage role", &repo.Signed{Role: []byte("{")}, http.StatusUnprocessableEntity, "parse role hello"},
	} {
		_, err := c.Publish(ctx, "hello", tc.s)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tc.want || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: %v, want status %d and %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if d := treeDiff(before, treeHashes(t, filepath.Join(f.dir, "public"))); len(d) > 0 {
		t.Fatalf("refused uploads changed what is served: %v", d)
	}
	if _, err := c.Publish(ctx, "hello", good); err != nil {
		t.Fatal(err)
	}
	_, err = c.Publish(ctx, "hello", good)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("replayed upload: %v, want 409", err)
	}
}

func TestAdminSlowUpload_R54(t *testing.T) {
	const stall = 400 * time.Millisecond
	f := newAdminFixture(t, func(c *AdminConfig) { c.ReadStall = stall })
	s := f.signed(t, "1.1.0", "hello 1.1.0") // 11 bytes
	if code, err := pacedUpload(t, f, s, stall/4, nil); err != nil || code != http.StatusOK {
		t.Fatalf("slow but steady upload (%v in all, read timeout %v): %d, %v", 11*stall/4, stall, code, err)
	}
	s2 := f.signed(t, "1.2.0", "hello 1.2.0")
	block := make(chan struct{})
	defer close(block)
	done := make(chan error, 1)
	go func() {
		code, err := pacedUpload(t, f, s2, 0, block)
		if err == nil && code == http.StatusOK {
			err = errors.New("a stalled upload was published")
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && err.Error() == "a stalled upload was published" {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a stalled upload was not cut")
	}
	if entries, _ := f.repo.List(context.Background()); len(entries) != 3 {
		t.Fatalf("after a stalled upload the repository lists %d targets, want 3", len(entries))
	}
}

func TestAdminConcurrentUploads(t *testing.T) {
	f := newAdminFixture(t, nil)
	a := f.signed(t, "1.1.0", "hello 1.1.0")
	b := f.signed(t, "1.2.0", "hello 1.2.0")
	c := f.client(t, f.hello)
	errs := make(chan error, 2)
	for _, s := range []*repo.Signed{a, b} {
		go func() {
			_, err := c.Publish(context.Background(), "hello", s)
			errs <- err
		}()
	}
	var ok, stale int
	for range 2 {
		err := <-errs
		var ae *APIError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ae) && ae.Status == http.StatusConflict && strings.Contains(ae.Message, "not newer"):
			stale++
		default:
			t.Errorf("concurrent upload: %v", err)
		}
	}
	if ok != 1 || stale != 1 {
		t.Fatalf("%d published, %d stale; want 1 and 1", ok, stale)
	}
	if entries, err := f.repo.List(context.Background()); err != nil || len(entries) != 3 {
		t.Fatalf("List = %d entries, %v; want 3", len(entries), err)
	}
}

// TestAdminWithoutOnlineKeys: a server whose online keys are gone refuses
// uploads with 503, writes nothing and tells no path.
func TestAdminWithoutOnlineKeys(t *testing.T) {
	f := adminRepo(t, nil)
	if err := os.Remove(filepath.Join(f.dir, "keys", "snapshot.age")); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(f.dir, []byte(adminPass))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Repo = r
	f.srv = startRun(t, f.handler(t), Config{Logger: slog.New(slog.NewJSONHandler(f.logs, nil))})
	s := f.signed(t, "1.1.0", "hello 1.1.0")
	before := treeHashes(t, filepath.Join(f.dir, "public"))
	_, err = f.client(t, f.hello).Publish(context.Background(), "hello", s)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || strings.Contains(ae.Message, f.dir) {
		t.Fatalf("upload without online keys: %v, want 503 without a server path", err)
	}
	if d := treeDiff(before, treeHashes(t, filepath.Join(f.dir, "public"))); len(d) > 0 {
		t.Fatalf("a refused upload changed what is served: %v", d)
	}
}

// TestAdminAuthMessage_R53: a request without a token is told one is
// required; one whose token the server does not know (mistyped, revoked)
// is told so, not that it sent none. A revoked token is gone from the
// tokens file, so the answer names both kinds of admin token: a revoked
// rollout token is not called a publisher token (walk10 #7).
func TestAdminAuthMessage_R53(t *testing.T) {
	f := newAdminFixture(t, nil)
	roll := ""
	for _, tok := range mustTokens(t, f.tokens) {
		if tok.Of() == ScopeRollout {
			roll = tok.ID
		}
	}
	if _, err := RevokeToken(f.tokens, roll); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, path, token, want string }{
		{"no token", "role", "", "a publisher or rollout token is required"},
		{"unknown token", "role", "ferry_" + strings.Repeat("A", 43), "unknown or revoked publisher or rollout token"},
		{"revoked rollout token", "rollout", f.roll, "unknown or revoked publisher or rollout token"},
	} {
		req, err := http.NewRequest("GET", f.srv.url+"/api/v1/apps/hello/"+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := f.srv.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %s, want 401 saying %q", c.name, resp.StatusCode, body, c.want)
		}
	}
}
