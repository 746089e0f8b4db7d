package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckURL_R29(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://updates.example.com/metadata/timestamp.json", false, true},
		{"https://127.0.0.1:8443/x", false, true},
		{"HTTPS://example.com/x", false, true},
		{"http://example.com/x", false, false},
		{"http://example.com/x", true, false},
		{"http://127.0.0.1:8080/x", false, false},
		{"http://127.0.0.1:8080/x", true, true},
		{"http://127.9.9.9/x", true, true},
		{"http://[::1]:80/x", true, true},
		{"http://localhost:80/x", true, true},
		{"http://localhost.example.com/x", true, false},
		{"http://10.0.0.1/x", true, false},
		{"http://0.0.0.0/x", true, false},
		{"file:///etc/passwd", false, false},
		{"file:///etc/passwd", true, false},
		{"ftp://example.com/x", true, false},
		{"javascript:alert(1)", true, false},
		{"https:opaque", false, false},
		{"https:///nohost", false, false},
		{"//example.com/x", false, false},
		{"/metadata/root.json", false, false},
		{"", false, false},
		{"https://exa mple.com/", false, false},
	}
	for _, tt := range tests {
		err := CheckURL(tt.url, tt.insecure)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", tt.url, tt.insecure, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("CheckURL(%q): %v does not wrap ErrRefused", tt.url, err)
		}
	}
}

func TestRefusedURLsAreNotFetched_R29(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	f, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{srv.URL + "/x", "file:///etc/hostname", "ftp://127.0.0.1/x"} {
		_, err := f.Bytes(context.Background(), u, 100)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("Bytes(%s) = %v, want ErrRefused", u, err)
		}
		if !strings.HasPrefix(err.Error(), "fetch "+u+": ") {
			t.Errorf("error %q does not start with the URL", err)
		}
	}
	if hits != 0 {
		t.Errorf("server got %d requests", hits)
	}
}

func TestHTTPLoopbackOnlyWithInsecureOption_R32(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	for _, insecure := range []bool{false, true} {
		f, err := New(Options{InsecureAllowHTTPLoopback: insecure})
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.Bytes(context.Background(), srv.URL+"/x", 100)
		if insecure && (err != nil || string(b) != "ok") {
			t.Errorf("insecure loopback: %q, %v", b, err)
		}
		if !insecure && !errors.Is(err, ErrRefused) {
			t.Errorf("http without the insecure option: %v, want ErrRefused", err)
		}
	}
}

func TestRedirects_R32(t *testing.T) {
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) }))
	defer other.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("plain")) }))
	defer plain.Close()
	var selfURL string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("same")) })
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/tohttp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.Host+"/ok", http.StatusFound)
	})
	mux.HandleFunc("/toplain", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, plain.URL+"/x", http.StatusFound) })
	mux.HandleFunc("/toother", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, other.URL+"/x", http.StatusFound) })
	mux.HandleFunc("/tolocalhost", func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(r.Host)
		http.Redirect(w, r, "https://localhost:"+port+"/ok", http.StatusFound)
	})
	mux.HandleFunc("/tofile", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, selfURL+"/loop", http.StatusFound) })
	srv, _ := newServer(t, mux, Options{})
	selfURL = srv.URL
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	pool.AddCert(other.Certificate())
	tests := []struct {
		path     string
		insecure bool
		want     string // body, or "" for refused
	}{
		{"/same", false, "same"},
		{"/tohttp", false, ""},
		{"/tohttp", true, ""}, // leaves https even though http loopback is allowed
		{"/toplain", true, ""},
		{"/toother", false, ""},
		{"/tolocalhost", false, ""}, // another host name for the same server
		{"/tofile", false, ""},
		{"/loop", false, ""},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			f, err := New(Options{RootCAs: pool, InsecureAllowHTTPLoopback: tt.insecure})
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.Bytes(context.Background(), srv.URL+tt.path, 100)
			if tt.want != "" {
				if err != nil || string(b) != tt.want {
					t.Fatalf("got %q, %v; want %q", b, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("got %q, %v; want ErrRefused", b, err)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestTLSRefused_R33(t *testing.T) {
	ca := newCA(t)
	lo := []net.IP{net.IPv4(127, 0, 0, 1)}
	now := time.Now()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	tests := []struct {
		name  string
		cert  tls.Certificate
		roots *x509.CertPool
		ok    bool
	}{
		{"trusted", ca.leaf(t, lo, nil, now.Add(-time.Hour), now.Add(time.Hour)), ca.pool(), true},
		{"unknown CA", ca.leaf(t, lo, nil, now.Add(-time.Hour), now.Add(time.Hour)), newCA(t).pool(), false},
		{"system roots", ca.leaf(t, lo, nil, now.Add(-time.Hour), now.Add(time.Hour)), nil, false},
		{"expired", ca.leaf(t, lo, nil, now.Add(-2*time.Hour), now.Add(-time.Hour)), ca.pool(), false},
		{"not yet valid", ca.leaf(t, lo, nil, now.Add(time.Hour), now.Add(2*time.Hour)), ca.pool(), false},
		{"wrong host", ca.leaf(t, []net.IP{net.IPv4(10, 9, 8, 7)}, []string{"updates.example.com"}, now.Add(-time.Hour), now.Add(time.Hour)), ca.pool(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveWithCert(t, tt.cert, ok)
			f, err := New(Options{RootCAs: tt.roots, InsecureAllowHTTPLoopback: true})
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.Bytes(context.Background(), srv.URL+"/x", 100)
			if tt.ok {
				if err != nil || string(b) != "ok" {
					t.Fatalf("got %q, %v", b, err)
				}
				return
			}
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %q, %v; want a certificate verification error", b, err)
			}
			// No fallback to plain http on the same port or any other.
			if strings.Contains(err.Error(), "http://") {
				t.Errorf("error mentions plain http: %v", err)
			}
		})
	}
}

func TestTLSMinimumVersion_R33(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f, err := New(Options{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes(context.Background(), srv.URL+"/x", 10); err == nil {
		t.Fatal("TLS 1.1 server accepted")
	}
}

// TestNoVerificationBypass_R33 fails if any Go file of the module mentions
// the tls.Config field that turns certificate verification off.
func TestNoVerificationBypass_R33(t *testing.T) {
	ident := "Insecure" + "Skip" + "Verify"
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	var files int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), ident) {
			t.Errorf("%s mentions %s", path, ident)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("scanned only %d files", files)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(Options{RootCAs: x509.NewCertPool(), HTTPClient: &http.Client{}}); err == nil {
		t.Error("RootCAs with HTTPClient accepted")
	}
	if _, err := New(Options{Timeout: -1}); err == nil {
		t.Error("negative timeout accepted")
	}
	f, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f.opts.Timeout != DefaultTimeout || f.opts.MinRate != DefaultMinRate || f.opts.RateWindow != DefaultRateWindow {
		t.Errorf("defaults not applied: %+v", f.opts)
	}
}

func TestHTTPClientKeepsRedirectPolicy_R32(t *testing.T) {
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) }))
	defer other.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x", http.StatusFound)
	}))
	defer srv.Close()
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return nil } // must be replaced
	f, err := New(Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes(context.Background(), srv.URL+"/", 100); !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v, want ErrRefused", err)
	}
}
