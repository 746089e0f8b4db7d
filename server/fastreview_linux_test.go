package server

// Probes of the fast path from the review of commit 3324c94: each failed
// on that commit, and says what it asks of a correct server.

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFastShutdownPartialRequest: a kept-alive fast-path connection that
// has sent part of its next request (and nothing more) does not hold Run's
// shutdown: like net/http, which counts it idle, the fast path closes it
// at once, and Run returns nil promptly (it used to count it busy and wait
// for ReadHeaderTimeout or ShutdownTimeout).
func TestFastShutdownPartialRequest(t *testing.T) {
	f := newFastFixture(t, Config{ReadHeaderTimeout: 5 * time.Second, ShutdownTimeout: 2 * time.Second, IdleTimeout: time.Minute})
	c := f.dial(t)
	f.keptAlive(t, c)
	io.WriteString(c, "GET "+tsPath+" HTTP/1.1\r\n") // never finished
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	f.cancel()
	err := <-f.done
	f.done <- nil
	if d := time.Since(start); err != nil || d > time.Second {
		t.Errorf("Run returned %v after %v; want nil at once (one half-sent request held the shutdown)", err, d.Round(time.Millisecond))
	}
}

// TestFastShutdownTellsNetHTTP: net/http shuts down at the same time as
// the fast path, so an idle keep-alive connection of net/http's is closed
// when shutdown begins, even while a fast-path connection is still
// waited for (net/http's shutdown used to begin only after the fast
// path's, and its connections took new requests meanwhile).
func TestFastShutdownTellsNetHTTP(t *testing.T) {
	f := newFastFixture(t, Config{ReadHeaderTimeout: 5 * time.Second, ShutdownTimeout: 3 * time.Second, IdleTimeout: time.Minute})
	// The holder: a fast-path connection with half a request.
	h := f.dial(t)
	f.keptAlive(t, h)
	io.WriteString(h, "GET "+tsPath+" HTTP/1.1\r\n")
	// A keep-alive connection that net/http serves (immutable metadata).
	c := f.dial(t)
	br := bufio.NewReader(c)
	req := "GET /metadata/1.root.json?v=1 HTTP/1.1\r\nHost: a\r\n\r\n"
	io.WriteString(c, req)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	time.Sleep(100 * time.Millisecond)
	f.cancel()
	time.Sleep(500 * time.Millisecond)
	io.WriteString(c, req)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Errorf("500 ms into shutdown net/http still answered a new request on an idle keep-alive connection: %s", resp.Status)
	}
	<-f.done
	f.done <- nil
}

// TestFastHandoverKeepsHeaderDeadline_R54: a request that trickles in on
// the fast path and then turns out to be net/http's (a Range line) ends
// within about ReadHeaderTimeout of its first byte, as
// TestFastSlowHeaders_R54 asks of the fast path's own requests: net/http
// counts ReadHeaderTimeout from the hand-over, and replayConn keeps the
// earlier deadline (the hand-over used to give the request a fresh one).
func TestFastHandoverKeepsHeaderDeadline_R54(t *testing.T) {
	const rht = time.Second
	f := newFastFixture(t, Config{ReadHeaderTimeout: rht})
	c, closed := f.handshaken(t)
	first := "GET " + tsPath + " HTTP/1.1\r\nHost: a\r\n"
	step := (rht * 8 / 10) / time.Duration(len(first))
	var held time.Duration
	ended := false
	write := func(s string, step time.Duration) bool {
		for i := 0; i < len(s); i++ {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return false
			}
			select {
			case held = <-closed:
				ended = true
				return false
			case <-time.After(step):
			}
		}
		return true
	}
	if write(first, step) && write("Range: bytes=0-0\r\n", 0) {
		write("X-Slow: "+strings.Repeat("a", 200), 20*time.Millisecond)
	}
	if !ended {
		select {
		case held = <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("not closed 5 s after the last byte")
		}
	}
	if held > rht*13/10 {
		t.Errorf("a trickled header held the connection %v with ReadHeaderTimeout %v", held.Round(time.Millisecond), rht)
	}
}

// TestFastBufferFillKeepsHeaderDeadline_R54: the same with a header that
// fills the fast path's 4 KiB buffer just before ReadHeaderTimeout, which
// hands it to net/http: the request keeps its deadline there too.
func TestFastBufferFillKeepsHeaderDeadline_R54(t *testing.T) {
	const rht = time.Second
	f := newFastFixture(t, Config{ReadHeaderTimeout: rht})
	c, closed := f.handshaken(t)
	// 4 KiB in 40 writes over 0.8 s, then a byte every 20 ms.
	req := "GET " + tsPath + " HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", fastBuffer)
	chunk := fastBuffer / 40
	off := 0
	for ; off+chunk <= fastBuffer; off += chunk {
		if _, err := c.Write([]byte(req[off : off+chunk])); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The rest of the 4 KiB at once: the buffer is full, net/http's now.
	c.Write([]byte(req[off:fastBuffer]))
	var held time.Duration
	ended := false
	for i := 0; i < 150 && !ended; i++ {
		if _, err := c.Write([]byte("q")); err != nil {
			break
		}
		select {
		case held = <-closed:
			ended = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !ended {
		select {
		case held = <-closed:
		case <-time.After(5 * time.Second):
			held = 5 * time.Second
		}
	}
	if held > rht*13/10 {
		t.Errorf("a trickled 4 KiB header held the connection %v with ReadHeaderTimeout %v", held.Round(time.Millisecond), rht)
	}
}

// holdConn passes writes through until hold is set; then it keeps them
// and sends them in one write on flush (so that a request and the
// close_notify alert after it reach the server in one segment).
type holdConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (c *holdConn) Write(p []byte) (int, error) {
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *holdConn) flush() error {
	c.hold = false
	c.Conn.SetWriteDeadline(time.Time{}) // CloseWrite set it to now
	_, err := c.Conn.Write(c.buf)
	return err
}

// TestFastRequestThenCloseNotify: a client that sends its request and
// then closes its writing side (TLS close_notify, tls.Conn.CloseWrite)
// gets its answer, from the fast path as from net/http: tls.Conn.Read
// returns (n, io.EOF) when the alert follows the data, and the n bytes are
// answered first (they used to be dropped).
func TestFastRequestThenCloseNotify(t *testing.T) {
	f := newFastFixture(t, Config{})
	for _, req := range []string{
		tsRequest("GET", ""),                      // the fast path's
		tsRequest("GET", "Content-Length: 0\r\n"), // net/http's (for comparison)
	} {
		raw, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		hc := &holdConn{Conn: raw}
		// TLS 1.2: there tls.Conn.Read sees the alert after the data (in
		// TLS 1.3 alerts are encrypted as application data).
		c := tls.Client(hc, &tls.Config{RootCAs: f.pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}, MaxVersion: tls.VersionTLS12})
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // TLS 1.3 tickets etc. arrive first
		hc.hold = true
		io.WriteString(c, req)
		c.CloseWrite()
		if err := hc.flush(); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") {
			t.Errorf("request %q then close_notify: got %q, want a 200", req, b)
		}
	}
}
