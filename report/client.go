package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// CredentialsFile is the name, in the agent's state directory, of the
// file (mode 0600) that holds the server's URL and this installation's
// credential after ferry agent enroll.
const CredentialsFile = "report-credentials.json"

// Credentials are what enrollment gave this installation.
type Credentials struct {
	Server     string    `json:"server"`     // the server's base URL
	CA         string    `json:"ca"`         // PEM CA certificates to trust for it ("" : the system's)
	InstallID  string    `json:"install_id"` // the installation it reports for
	Credential string    `json:"credential"` // its secret; never logged
	TokenID    string    `json:"token_id"`   // the enrollment token it used
	Enrolled   time.Time `json:"enrolled"`   // when
}

// ErrNotEnrolled: the state directory holds no credentials.
var ErrNotEnrolled = errors.New("not enrolled")

// LoadCredentials reads STATEDIR/report-credentials.json (ErrNotEnrolled
// if it does not exist).
func LoadCredentials(stateDir string) (Credentials, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, CredentialsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, fmt.Errorf("report: %s: %w", stateDir, ErrNotEnrolled)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("report: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil || c.Server == "" || c.Credential == "" || c.InstallID == "" {
		return Credentials{}, fmt.Errorf("report: %s: not valid credentials (enroll again)", filepath.Join(stateDir, CredentialsFile))
	}
	return c, nil
}

// Save writes the credentials to STATEDIR/report-credentials.json, mode 0600.
func (c Credentials) Save(stateDir string) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(stateDir, CredentialsFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("report: save credentials: %w", err)
	}
	return nil
}

// App is what the installation runs of one application.
type App struct {
	App     string `json:"app"`
	Version string `json:"version"`
	Channel string `json:"channel"`
}

// Client talks to a server's reporting API over HTTPS.
type Client struct {
	// OnBusy, if set, is called before Enroll waits for a busy server to
	// be asked again, with how long it waits.
	OnBusy func(wait time.Duration)

	base  *url.URL
	http  *http.Client
	sleep func(ctx context.Context, d time.Duration) error // sleepCtx; tests replace it
}

// NewClient is a client of the server at base; caPEM, if not empty, are
// the CA certificates to trust instead of the system's.
func NewClient(base string, caPEM []byte) (*Client, error) {
	if err := fetch.CheckURL(base, false); err != nil {
		return nil, fmt.Errorf("report server %s: %w", base, err)
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/")
	if err != nil {
		return nil, err
	}
	var pool *x509.CertPool
	if len(caPEM) > 0 {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("report: the CA file holds no PEM certificate")
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	c := &http.Client{Transport: t, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Client{base: u, http: c, sleep: sleepCtx}, nil
}

// APIError is an answer other than 200: its status, the server's message
// and, for 429 and 503, how long it asked to wait.
type APIError struct {
	Status     int
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Message)
}

// A server busy enrolling other machines (429 or 503 with Retry-After) is
// asked again after the time it names, EnrollAttempts times in all and
// for at most MaxEnrollWait each time: a fleet provisioned at once
// enrolls without a script of its own around ferry agent enroll, and a
// server that keeps refusing is not asked forever.
const (
	EnrollAttempts = 5
	MaxEnrollWait  = time.Minute
)

// Enroll exchanges an enrollment token for this installation's credential.
// While the server is busy it waits and asks again (EnrollAttempts,
// MaxEnrollWait), calling OnBusy before each wait; the last answer's
// *APIError is returned when it stays busy.
func (c *Client) Enroll(ctx context.Context, token, installID, hostname string, apps []App) (Credentials, error) {
	var ans struct {
		InstallID  string `json:"install_id"`
		Credential string `json:"credential"`
		TokenID    string `json:"token_id"`
	}
	req := map[string]any{"install_id": installID, "hostname": hostname, "apps": orEmpty(apps)}
	for attempt := 1; ; attempt++ {
		err := c.post(ctx, "api/v1/enroll", token, req, &ans)
		wait, busy := retryAfter(err)
		if !busy || attempt == EnrollAttempts || wait > MaxEnrollWait {
			if err != nil {
				return Credentials{}, fmt.Errorf("enroll: %w", err)
			}
			break
		}
		if c.OnBusy != nil {
			c.OnBusy(wait)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return Credentials{}, fmt.Errorf("enroll: waiting for a busy server: %w", err)
		}
	}
	if ans.InstallID != installID || ans.Credential == "" {
		return Credentials{}, fmt.Errorf("enroll: the server answered for installation %q, not %q", ans.InstallID, installID)
	}
	return Credentials{Server: c.base.String(), InstallID: installID, Credential: ans.Credential, TokenID: ans.TokenID}, nil
}

// Send sends a batch of audit lines and returns the end of the chain the
// server now knows.
func (c *Client) Send(ctx context.Context, cred Credentials, items []Item, apps []App) (audit.State, error) {
	lines := make([]string, len(items))
	for i, it := range items {
		lines[i] = string(it.Line)
	}
	req := map[string]any{"install_id": cred.InstallID, "lines": lines}
	if len(apps) > 0 {
		req["apps"] = apps
	}
	var ans struct {
		Added int         `json:"added"`
		Head  audit.State `json:"head"`
	}
	if err := c.post(ctx, "api/v1/events", cred.Credential, req, &ans); err != nil {
		return audit.State{}, fmt.Errorf("send events: %w", err)
	}
	return ans.Head, nil
}

// retryAfter reports whether err is a server asking to be asked again
// later (429 or 503 with Retry-After), and after how long.
func retryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if !errors.As(err, &ae) || ae.RetryAfter <= 0 {
		return 0, false
	}
	return ae.RetryAfter, ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

func orEmpty(apps []App) []App {
	if apps == nil {
		return []App{}
	}
	return apps
}

func (c *Client) post(ctx context.Context, path, secret string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		ae := &APIError{Status: resp.StatusCode, Message: e.Error}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ae.RetryAfter = time.Duration(s) * time.Second
		}
		return ae
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	return nil
}
