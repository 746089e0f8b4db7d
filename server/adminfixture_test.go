package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

const adminPass = "admin test passphrase"

// adminFixture is a real repository with hello and other published once,
// a token for each, hello's key as its pipeline holds it, and the admin API
// and the repository served by Run over HTTPS on 127.0.0.1.
type adminFixture struct {
	dir         string
	repo        *repo.Repo
	tokens      string
	hello, othr string // publish tokens
	roll        string // hello's rollout token
	key         keys.Signer
	srv         *started
	cfg         AdminConfig
	logs        *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newAdminFixture(t *testing.T, tweak func(*AdminConfig)) *adminFixture {
	t.Helper()
	f := adminRepo(t, tweak)
	f.srv = startRun(t, f.handler(t), Config{Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), ReadTimeout: f.cfg.ReadStall})
	return f
}

// adminRepo is the fixture without its server.
func adminRepo(t testing.TB, tweak func(*AdminConfig)) *adminFixture {
	t.Helper()
	ctx := context.Background()
	f := &adminFixture{dir: filepath.Join(t.TempDir(), "repo"), logs: &lockedBuffer{}}
	if err := repo.Init(ctx, f.dir, repo.InitOptions{Passphrase: []byte(adminPass), InsecureScryptWorkFactor: 8}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(f.dir, []byte(adminPass))
	if err != nil {
		t.Fatal(err)
	}
	f.repo = r
	for _, app := range []string{"hello", "other"} {
		src := filepath.Join(t.TempDir(), app)
		os.WriteFile(src, []byte(app+" 1.0.0"), 0o644)
		if err := r.Publish(ctx, repo.Release{App: app, Version: "1.0.0", Platform: "linux/amd64"}, []string{src}); err != nil {
			t.Fatal(err)
		}
	}
	priv, err := keys.Load(filepath.Join(f.dir, "keys", "apps", "hello.age"), []byte(adminPass))
	if err != nil {
		t.Fatal(err)
	}
	if f.key, err = keys.NewFileSigner(priv); err != nil {
		t.Fatal(err)
	}
	f.tokens = filepath.Join(f.dir, TokensFile)
	if f.hello, _, err = CreateToken(f.tokens, "hello", time.Now()); err != nil {
		t.Fatal(err)
	}
	if f.othr, _, err = CreateToken(f.tokens, "other", time.Now()); err != nil {
		t.Fatal(err)
	}
	if f.roll, _, err = CreateScopedToken(f.tokens, "hello", ScopeRollout, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.cfg = AdminConfig{Repo: r, Tokens: f.tokens, TempDir: t.TempDir(),
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil))}
	if tweak != nil {
		tweak(&f.cfg)
	}
	return f
}

// handler is the admin API under /api/v1/ and the repository, as ferry
// serve mounts them.
func (f *adminFixture) handler(t testing.TB) http.Handler {
	admin, err := Admin(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	public, err := Repository(filepath.Join(f.dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", admin)
	mux.Handle("/", public)
	return mux
}

func (f *adminFixture) client(t testing.TB, token string) *AdminClient {
	t.Helper()
	c, err := NewAdminClient(f.srv.url, token, f.srv.pool)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signed is hello's next role with one new version, signed with hello's key.
func (f *adminFixture) signed(t testing.TB, version, content string) *repo.Signed {
	t.Helper()
	ctx := context.Background()
	cur, err := f.client(t, f.hello).AppRole(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "hello")
	os.WriteFile(src, []byte(content), 0o644)
	s, err := repo.SignRelease(ctx, []keys.Signer{f.key}, cur, repo.Batch{
		Release: repo.Release{App: "hello", Version: version, Platform: "linux/amd64"}, Files: []string{src}}, repo.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// multipartBody encodes an upload as the client does.
func multipartBody(t *testing.T, s *repo.Signed) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := writeUpload(mw, s, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), b.Bytes()
}

func (f *adminFixture) do(t *testing.T, method, path, token, ctype string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := f.srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestAdminAuth_R53: every endpoint answers 401 without a token (or with
// an unknown or revoked one), 403 with another application's token, and
// 200 with the application's own; no token appears in any log.
func mustTokens(t *testing.T, file string) []Token {
	t.Helper()
	ts, err := ListTokens(file)
	if err != nil || len(ts) == 0 {
		t.Fatalf("ListTokens = %v, %v", ts, err)
	}
	return ts
}

// countingBody is an endless request body that counts what is read of it:
// prefix, then 'x' for ever.
type countingBody struct {
	prefix string
	n      atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	off := c.n.Load()
	for i := range p {
		if j := off + int64(i); j < int64(len(c.prefix)) {
			p[i] = c.prefix[j]
		} else {
			p[i] = 'x'
		}
	}
	c.n.Add(int64(len(p)))
	return len(p), nil
}

func (c *countingBody) Close() error { return nil }

// TestAdminOversized_R54: a body declared larger than the limit is
// answered 413 without one byte read; an undeclared (chunked) body is cut
// at the limit and leaves nothing on disk; files beyond what the role
// signed are cut at the role's lengths.
// TestAdminFlood_R55: parallel clients past a token's rate get 429 with a
// Retry-After, and so does one address past its own rate; once the bucket
// refills, requests go through again.
// TestAdminUploadRefused_R53: uploads the delegation does not allow (the
// wrong application key, paths outside it, a changed version, files that
// are not what was signed) are answered with their status over HTTPS and
// change nothing served.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func treeHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[p] = fmt.Sprintf("%x", b)
		}
		return nil
	})
	return out
}

func treeDiff(a, b map[string]string) []string {
	var d []string
	for p, h := range a {
		if b[p] != h {
			d = append(d, "changed: "+p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			d = append(d, "added: "+p)
		}
	}
	return d
}

// pacedUpload sends an upload's multipart body through a pipe: the role,
// then the file a byte at a time every gap, or, with stall, nothing more.
func pacedUpload(t *testing.T, f *adminFixture, s *repo.Signed, gap time.Duration, stall <-chan struct{}) (int, error) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		p, _ := mw.CreateFormFile("role", "role.json")
		p.Write(s.Role)
		p, _ = mw.CreateFormFile("file", "artifact")
		data, _ := os.ReadFile(s.Files[0])
		for _, c := range data {
			if stall != nil {
				<-stall
				pw.CloseWithError(errors.New("stalled"))
				return
			}
			time.Sleep(gap) // the pace of a slow link, not a wait for the server
			if _, err := p.Write([]byte{c}); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest("POST", f.srv.url+"/api/v1/apps/hello/releases", pr)
	req.Header.Set("Authorization", "Bearer "+f.hello)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := f.srv.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestAdminSlowUpload_R54: an upload that keeps sending may take longer
// than the server's read timeout; one that stalls is cut after the stall
// bound and publishes nothing.
// TestAdminConcurrentUploads: two pipelines sign on top of the same role
// and upload at once; exactly one is published, the other is told its role
// is stale (409), and what is served verifies as one of the two.
