package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout    = 5 * time.Minute
	DefaultMinRate    = 4 << 10 // bytes per second
	DefaultRateWindow = 30 * time.Second
	// MaxRedirects is how many redirects a request may follow.
	MaxRedirects = 5
)

// Options configure a Fetcher. The zero value is safe: system roots,
// https only.
type Options struct {
	RootCAs    *x509.CertPool // nil: system roots
	HTTPClient *http.Client   // nil: a client built here; if set, its Transport is used but the redirect policy is ferry's
	// InsecureAllowHTTPLoopback permits plain http:// to a loopback address
	// (127.0.0.0/8, ::1, localhost). For tests and local development only.
	InsecureAllowHTTPLoopback bool
	// Timeout is the overall deadline of a Bytes request, and the base of
	// a File request's deadline, which adds the time the remaining bytes
	// take at MinRate; 0: a default.
	Timeout    time.Duration
	MinRate    int64         // bytes per second averaged over RateWindow; 0: a default
	RateWindow time.Duration // 0: a default
	UserAgent  string
}

// Fetcher downloads over HTTPS. It is safe for concurrent use.
type Fetcher struct {
	opts   Options
	client *http.Client
}

// New validates opts and returns a Fetcher.
//
// RootCAs and HTTPClient are exclusive: a caller that brings its own client
// puts its CA pool in that client's transport. ferry never weakens the TLS
// settings of a client it is given, and never disables verification in one
// it builds.
func New(opts Options) (*Fetcher, error) {
	if opts.RootCAs != nil && opts.HTTPClient != nil {
		return nil, errors.New("fetch: options RootCAs and HTTPClient are exclusive: put the CA pool in the client's transport")
	}
	if opts.Timeout < 0 || opts.MinRate < 0 || opts.RateWindow < 0 {
		return nil, fmt.Errorf("fetch: negative timeout %v, min rate %d or rate window %v", opts.Timeout, opts.MinRate, opts.RateWindow)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MinRate == 0 {
		opts.MinRate = DefaultMinRate
	}
	if opts.RateWindow == 0 {
		opts.RateWindow = DefaultRateWindow
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "ferry"
	}
	var c http.Client
	if opts.HTTPClient != nil {
		c = *opts.HTTPClient
	}
	if c.Transport == nil {
		c.Transport = newTransport(opts.RootCAs)
	}
	c.Timeout = 0 // the deadline comes from the request context
	c.CheckRedirect = checkRedirect(opts.InsecureAllowHTTPLoopback)
	return &Fetcher{opts: opts, client: &c}, nil
}

// newTransport is http.DefaultTransport (proxies from the environment,
// dial and handshake timeouts, HTTP/2) with ferry's TLS settings and no
// transparent decompression.
func newTransport(roots *x509.CertPool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	// TLS 1.2 is the floor; Go negotiates 1.3 when the server offers it.
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	t.ForceAttemptHTTP2 = true
	// Hashes cover the bytes as published; a decompressor must never see
	// unverified bytes.
	t.DisableCompression = true
	t.ResponseHeaderTimeout = 0 // the minimum rate covers a silent server
	return t
}

// CheckURL reports whether rawURL may be fetched: https, or http to a
// loopback host when insecure loopback is allowed.
func CheckURL(rawURL string, insecureAllowHTTPLoopback bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return checkURL(u, insecureAllowHTTPLoopback)
}

func checkURL(u *url.URL, insecureAllowHTTPLoopback bool) error {
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q has no host", ErrRefused, u.Redacted())
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if !insecureAllowHTTPLoopback {
			return fmt.Errorf("%w: plain http is not allowed, use https", ErrRefused)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%w: plain http is allowed only to a loopback address, not %q", ErrRefused, u.Hostname())
		}
		return nil
	default:
		return fmt.Errorf("%w: scheme %q is not https", ErrRefused, u.Scheme)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRedirect follows a redirect only when it stays on the scheme and
// host:port of the original request and passes CheckURL.
func checkRedirect(insecure bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if len(via) > MaxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrRefused, MaxRedirects)
		}
		if err := checkURL(req.URL, insecure); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
		}
		if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !sameHost(req.URL, first) {
			return fmt.Errorf("redirect to %s: %w: it leaves %s://%s", req.URL.Redacted(), ErrRefused, first.Scheme, first.Host)
		}
		return nil
	}
}

func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "http") {
		return "80"
	}
	return "443"
}

// get checks rawURL and sends a GET for it with the given extra header.
// The request runs under a watch (the deadline timeout, and MinRate)
// derived from ctx; the caller feeds it every body byte read (watch.add)
// and stops it when done with the body.
func (f *Fetcher) get(ctx context.Context, rawURL string, hdr http.Header, timeout time.Duration) (*http.Response, *watch, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if err := checkURL(u, f.opts.InsecureAllowHTTPLoopback); err != nil {
		return nil, nil, err
	}
	w := f.startWatch(ctx, timeout)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		w.stop()
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", f.opts.UserAgent)
	// Hashes cover the bytes as published: asking for identity also stops
	// a caller's transport from asking for gzip and inflating unverified
	// bytes (R39).
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := f.client.Do(req)
	if err != nil {
		err = w.cause(unwrapURLError(err))
		w.stop()
		return nil, nil, err
	}
	if err := checkEncoding(resp); err != nil {
		resp.Body.Close()
		w.stop()
		return nil, nil, err
	}
	return resp, w, nil
}

// checkEncoding refuses a response that is encoded (compressed) anyway, or
// that a transport already decoded: nothing is decompressed before it is
// verified.
func checkEncoding(resp *http.Response) error {
	if resp.Uncompressed {
		return fmt.Errorf("%w: the HTTP transport decoded a compressed response; ferry asks for identity and verifies the bytes as published", ErrRefused)
	}
	var encoded []string
	for _, v := range resp.Header.Values("Content-Encoding") {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "identity") {
				encoded = append(encoded, e)
			}
		}
	}
	if len(encoded) == 0 {
		return nil
	}
	ce := strings.Join(encoded, ", ")
	return fmt.Errorf("%w: response has Content-Encoding %s; ferry asks for identity and verifies the bytes as published", ErrRefused, ce)
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// method and URL that ferry's own prefix already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// wrap prefixes err with "fetch URL: ", hiding any password in the URL.
func wrap(rawURL string, err error) error {
	if err == nil {
		return nil
	}
	if u, perr := url.Parse(rawURL); perr == nil {
		rawURL = u.Redacted()
	}
	return fmt.Errorf("fetch %s: %w", rawURL, err)
}
