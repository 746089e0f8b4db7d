package server

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseFast(t *testing.T) {
	const ts = "/metadata/timestamp.json"
	mine := []struct {
		req   string
		head  bool
		close bool
	}{
		{"GET " + ts + " HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n", false, false},
		{"HEAD " + ts + " HTTP/1.1\r\nHost: example\r\n\r\n", true, false},
		{"GET " + ts + " HTTP/1.1\r\nhost: a\r\nConnection: close\r\n\r\n", false, true},
		{"GET " + ts + " HTTP/1.1\r\nHOST:a\r\nconnection: Keep-Alive\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n", false, false},
		{"GET " + ts + " HTTP/1.1\r\nHost: [::1]:443\r\nConnection: keep-alive, CLOSE\r\nX-Empty:\r\n\r\n", false, true},
		{"GET " + ts + " HTTP/1.1\r\nHost: a\r\nUser-Agent: caf\xc3\xa9\t\r\n\r\n", false, false},
	}
	for _, c := range mine {
		for _, extra := range []string{"", "GET /next HTTP/1.1\r\n"} { // a pipelined request after it
			r, n, st := parseFast([]byte(c.req + extra))
			if st != fastMine || n != len(c.req) || r.path != ts || r.head != c.head || r.close != c.close {
				t.Errorf("%q: %+v, %d, %v; want mine, %d bytes, head %v close %v", c.req, r, n, st, len(c.req), c.head, c.close)
			}
		}
		// Every prefix of it waits for more.
		for i := range len(c.req) {
			if _, _, st := parseFast([]byte(c.req[:i])); st != fastMore {
				t.Errorf("%q: prefix of %d bytes: %v, want more", c.req, i, st)
			}
		}
	}
	not := []string{
		"POST " + ts + " HTTP/1.1\r\nHost: a\r\n\r\n",
		"PUT",
		"get " + ts + " HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET " + ts + " HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET " + ts + " HTTP/2.0\r\nHost: a\r\n\r\n",
		"GET  " + ts + " HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET " + ts + "?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /metadata/time%73tamp.json HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a" + ts + " HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
		"GET /" + strings.Repeat("a", maxPathLen) + " HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\n\r\n",                            // no Host
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",      // two
		"GET " + ts + " HTTP/1.1\r\nHost:\r\n\r\n",                   // empty
		"GET " + ts + " HTTP/1.1\r\nHost: a b\r\n\r\n",               // not a host
		"GET " + ts + " HTTP/1.1\r\nHost: a/b\r\n\r\n",               //
		"GET " + ts + " HTTP/1.1\nHost: a\n\n",                       // bare LF
		"GET " + ts + " HTTP/1.1\r\nHost: a\n\r\n",                   //
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\n X-Folded: b\r\n\r\n", // obsolete folding
		"GET " + ts + " HTTP/1.1\r\nHost : a\r\n\r\n",                // space before the colon
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",    // a control character
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",      //
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n",     //
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n", //
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nConnection: close, TE\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nif-modified-since: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nIf-Range: \"x\"\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nIf-Match: *\r\n\r\n",
		"GET " + ts + " HTTP/1.1\r\nHost: a\r\nIf-Unmodified-Since: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n",
		"\x16\x03\x01\x02\x00", // a TLS handshake sent twice
	}
	for _, req := range not {
		if r, n, st := parseFast([]byte(req)); st != fastNot {
			t.Errorf("%q: %+v, %d, %v; want not (net/http's)", req, r, n, st)
		}
	}
}

// FuzzFastParseAgreesWithNetHTTP: whatever parseFast calls its own,
// net/http's parser reads as the same request (method, path, no query,
// one Host, keep-alive or not, no body, no range or precondition) in
// exactly the same bytes, and net/http's server answers it as that
// request.
func FuzzFastParseAgreesWithNetHTTP(f *testing.F) {
	for _, s := range []string{
		"GET /metadata/timestamp.json HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n",
		"HEAD /metadata/timestamp.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
		"GET /metadata/root.json HTTP/1.1\r\nhOsT: a\r\nConnection: keep-alive\r\nUser-Agent: x\r\n\r\n",
		"GET /metadata/timestamp.json HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"GET /a HTTP/1.1\r\nHost: a\r\nX:\t v \t\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	srv := echoServer(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, st := parseFast(b)
		if st != fastMine {
			return
		}
		br := bufio.NewReader(bytes.NewReader(b[:n]))
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("fast path took %q, net/http refuses it: %v", b[:n], err)
		}
		if br.Buffered() != 0 {
			t.Fatalf("fast path took %d bytes, net/http's request is %d", n, n-br.Buffered())
		}
		want := http.MethodGet
		if r.head {
			want = http.MethodHead
		}
		switch {
		case req.Method != want || req.URL.Path != r.path || req.URL.RawPath != "" || req.URL.RawQuery != "" || req.URL.Host != "":
			t.Fatalf("fast path read %+v, net/http %s %+v", r, req.Method, req.URL)
		case req.ProtoMajor != 1 || req.ProtoMinor != 1:
			t.Fatalf("net/http read %s", req.Proto)
		case req.Host == "":
			t.Fatalf("net/http read no Host")
		case req.Close != r.close:
			t.Fatalf("close: fast path %v, net/http %v", r.close, req.Close)
		case req.ContentLength != 0 || len(req.TransferEncoding) != 0 || req.Header.Get("Expect") != "":
			t.Fatalf("net/http sees a body: %d %q", req.ContentLength, req.TransferEncoding)
		case !plainRequest(req):
			t.Fatalf("net/http sees a range or precondition: %q", req.Header)
		}
		// And net/http's server answers it, as that request.
		if got := netHTTPServes(t, srv, b[:n]); got != want+" "+r.path {
			t.Fatalf("net/http's server answered %q with %q", b[:n], got)
		}
	})
}

// pipeListener hands net/http the server ends of net.Pipe connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  *sync.Once
}

func (l pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// echoServer is a net/http server (over pipes) that answers every request
// with its method and path.
func echoServer(t testing.TB) pipeListener {
	l := pipeListener{conns: make(chan net.Conn), done: make(chan struct{}), once: new(sync.Once)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Method+" "+r.URL.Path)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l
}

// netHTTPServes sends req to srv and returns what the handler saw (or the
// status, when it was not called).
func netHTTPServes(t *testing.T, srv pipeListener, req []byte) string {
	client, server := net.Pipe()
	defer client.Close()
	srv.conns <- server
	client.SetDeadline(time.Now().Add(5 * time.Second))
	go client.Write(req)
	method, _, _ := strings.Cut(string(req), " ")
	resp, err := http.ReadResponse(bufio.NewReader(client), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("net/http's server: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return resp.Header.Get("X-Echo")
}
