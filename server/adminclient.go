package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// maxAnswer bounds what the client reads of an admin API answer.
const maxAnswer = 1 << 20

// AdminClient talks to a ferry server's admin API over HTTPS. It is safe
// for concurrent use.
type AdminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// APIError is an answer of the admin API other than success.
type APIError struct {
	Status     int           // HTTP status code
	Message    string        // the server's error message
	RetryAfter time.Duration // from Retry-After, 0 if none
}

func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// NewAdminClient returns a client of the admin API at base (https only),
// authenticating with token. roots nil means the system roots. Redirects
// are not followed: a token is sent to base and nowhere else.
func NewAdminClient(base, token string, roots *x509.CertPool) (*AdminClient, error) {
	if err := fetch.CheckURL(base, false); err != nil {
		return nil, fmt.Errorf("admin api %s: %w", base, err)
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/")
	if err != nil {
		return nil, err
	}
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return nil, errors.New("admin api: empty or malformed token")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	// Uploads ask "Expect: 100-continue": a server that refuses one
	// (401, 403, 413, 429) says so before the body is sent.
	t.ExpectContinueTimeout = 5 * time.Second
	c := &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &AdminClient{base: u, token: token, http: c}, nil
}

func (c *AdminClient) endpoint(app, what string) string {
	return c.base.JoinPath("api/v1/apps", app, what).String()
}

// AppRole returns the application's role as the server publishes it now,
// or nil if it is delegated but has none yet.
func (c *AdminClient) AppRole(ctx context.Context, app string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(app, "role"), nil)
	if err != nil {
		return nil, err
	}
	body, status, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("get role %s: %w", app, err)
	}
	if status == http.StatusNoContent {
		return nil, nil
	}
	return body, nil
}

// PublishOptions are the optional parts of an upload.
type PublishOptions struct {
	// Rollout, if set, is the release's rollout decision (its channel and
	// share; the state is active), signed by the server with its online
	// rollout key in the same commit as the release.
	Rollout *rollout.Entry
}

// Publish uploads a role signed by SignRelease and its files, streaming the
// files from disk. A server busy with another upload (503 with Retry-After)
// is tried again a few times.
func (c *AdminClient) Publish(ctx context.Context, app string, s *repo.Signed) ([]repo.Entry, error) {
	return c.PublishWith(ctx, app, s, PublishOptions{})
}

// PublishWith is Publish with options.
func (c *AdminClient) PublishWith(ctx context.Context, app string, s *repo.Signed, o PublishOptions) ([]repo.Entry, error) {
	var body []byte
	var err error
	for attempt := 0; ; attempt++ {
		body, err = c.publishOnce(ctx, app, s, o)
		var ae *APIError
		if attempt < 3 && errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && ae.RetryAfter > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(min(ae.RetryAfter, 10*time.Second)):
			}
			continue
		}
		break
	}
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", c.base.Redacted(), err)
	}
	var out struct {
		Published []struct {
			Path   string `json:"path"`
			Length int64  `json:"length"`
			SHA256 string `json:"sha256"`
		} `json:"published"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("publish to %s: bad answer: %w", c.base.Redacted(), err)
	}
	var es []repo.Entry
	for _, p := range out.Published {
		es = append(es, repo.Entry{Path: p.Path, Length: p.Length, SHA256: p.SHA256})
	}
	return es, nil
}

func (c *AdminClient) publishOnce(ctx context.Context, app string, s *repo.Signed, o PublishOptions) ([]byte, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeUpload(mw, s, o)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(app, "releases"), pr)
	if err != nil {
		pr.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Expect", "100-continue")
	if n, ok := uploadLength(mw.Boundary(), s, o); ok {
		req.ContentLength = n
	}
	body, _, err := c.do(req)
	pr.Close()
	return body, err
}

// writeUpload writes the rollout fields, the role part, then one part per
// file.
func writeUpload(mw *multipart.Writer, s *repo.Signed, o PublishOptions) error {
	if err := writeFields(mw, o); err != nil {
		return err
	}
	p, err := mw.CreateFormFile("role", "role.json")
	if err != nil {
		return err
	}
	if _, err := p.Write(s.Role); err != nil {
		return err
	}
	for _, name := range s.Files {
		if err := writeFilePart(mw, name); err != nil {
			return err
		}
	}
	return mw.Close()
}

func writeFields(mw *multipart.Writer, o PublishOptions) error {
	if o.Rollout == nil {
		return nil
	}
	if err := mw.WriteField("channel", o.Rollout.Channel); err != nil {
		return err
	}
	return mw.WriteField("basis_points", strconv.Itoa(o.Rollout.BasisPoints))
}

func writeFilePart(mw *multipart.Writer, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := mw.CreateFormFile("file", "artifact")
	if err != nil {
		return err
	}
	_, err = io.Copy(p, f)
	return err
}

// do sends req with the token and returns the body of a 2xx answer, or an
// *APIError.
func (c *AdminClient) do(req *http.Request) ([]byte, int, error) {
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if len(body) > maxAnswer {
		return nil, resp.StatusCode, fmt.Errorf("answer larger than %d bytes", maxAnswer)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(bytes.ToValidUTF8(body[:min(len(body), 200)], nil)))
		}
		ae := &APIError{Status: resp.StatusCode, Message: e.Error}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			ae.RetryAfter = time.Duration(secs) * time.Second
		}
		return nil, resp.StatusCode, ae
	}
	return body, resp.StatusCode, nil
}

// uploadLength is the exact length of the multipart body writeUpload
// writes, so that the server can refuse an oversized upload from its
// Content-Length; false if a file cannot be measured (the body is then
// sent chunked).
func uploadLength(boundary string, s *repo.Signed, o PublishOptions) (int64, bool) {
	var cw countWriter
	mw := multipart.NewWriter(&cw)
	if mw.SetBoundary(boundary) != nil || writeFields(mw, o) != nil {
		return 0, false
	}
	p, _ := mw.CreateFormFile("role", "role.json")
	p.Write(s.Role)
	for _, name := range s.Files {
		fi, err := os.Stat(name)
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		mw.CreateFormFile("file", "artifact")
		cw.n += fi.Size()
	}
	mw.Close()
	return cw.n, true
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// Rollout asks the server for one decision about a release of app (start,
// halt, resume, pull or promote), which it signs with its online rollout
// key, and returns the release's new entry.
func (c *AdminClient) Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error) {
	return c.RolloutPlanned(ctx, app, a, nil)
}

// RolloutPlanned is Rollout with a plan for the server's guard: with a
// start, it makes the rollout a guarded one (staged, or watched when the
// plan has no stages); nil is a plain decision.
func (c *AdminClient) RolloutPlanned(ctx context.Context, app string, a rollout.Action, plan *guard.Plan) (rollout.Entry, error) {
	body, err := json.Marshal(RolloutRequest{Action: string(a.Kind), Version: a.Version, BasisPoints: a.BasisPoints, Channel: a.Channel, Plan: plan})
	if err != nil {
		return rollout.Entry{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(app, "rollout"), bytes.NewReader(body))
	if err != nil {
		return rollout.Entry{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	answer, _, err := c.do(req)
	if err != nil {
		return rollout.Entry{}, fmt.Errorf("rollout %s %s %s on %s: %w", a.Kind, app, a.Version, c.base.Redacted(), err)
	}
	var out RolloutAnswer
	if err := json.Unmarshal(answer, &out); err != nil {
		return rollout.Entry{}, fmt.Errorf("rollout %s %s on %s: bad answer: %w", app, a.Version, c.base.Redacted(), err)
	}
	return out.Entry, nil
}

// Rollouts returns app's rollout status as the server publishes it now.
func (c *AdminClient) Rollouts(ctx context.Context, app string) (RolloutStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(app, "rollout"), nil)
	if err != nil {
		return RolloutStatus{}, err
	}
	answer, _, err := c.do(req)
	if err != nil {
		return RolloutStatus{}, fmt.Errorf("rollout status %s on %s: %w", app, c.base.Redacted(), err)
	}
	var out RolloutStatus
	if err := json.Unmarshal(answer, &out); err != nil {
		return RolloutStatus{}, fmt.Errorf("rollout status %s on %s: bad answer: %w", app, c.base.Redacted(), err)
	}
	return out, nil
}
