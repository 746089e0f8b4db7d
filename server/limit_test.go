package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// At most MaxConns connections are served at once: one more is closed as
// soon as it is accepted, and once a connection ends its slot is free
// again (R55).
func TestConnectionLimit_R55(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	s := startRun(t, h, Config{MaxConns: 2})
	dial := func() (*tls.Conn, error) {
		return tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	}
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 2)
	for range 2 {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			fmt.Fprintf(c, "GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			// Until the server closes the connection, which frees its
			// slot first.
			io.Copy(io.Discard, br)
			results <- result{string(b), err}
		}()
		<-entered
	}
	// Both slots are taken: a third connection is closed by the server.
	if c, err := dial(); err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // an upper bound only
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, rerr := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if rerr == nil {
			t.Fatalf("a third connection was served (%s) with MaxConns 2", resp.Status)
		}
	}
	// One ends; its slot serves a new connection.
	release <- struct{}{}
	if r := <-results; r.err != nil || r.body != "done" {
		t.Fatalf("held request: %q, %v", r.body, r.err)
	}
	// The server frees the slot when it closes the connection, up to
	// half a second after the client saw the response end (net/http waits
	// before closing, to avoid a reset): a condition with a deadline.
	for deadline := time.Now().Add(10 * time.Second); ; {
		body, err := tryGet(s)
		if err == nil && body == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a slot was freed: %q, %v", body, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if r := <-results; r.err != nil {
		t.Fatalf("second held request: %v", r.err)
	}
}

// tryGet gets / on a new connection, with an upper bound of 10 s.
func tryGet(s *started) (string, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A client that reads a response as a trickle, never stalling long
// enough for WriteTimeout, is still cut off once the response falls
// behind MinWriteRate on average; before, each write extended the
// deadline and such a client held its connection for as long as it liked
// (R54).
func TestSlowReaderCut_R54(t *testing.T) {
	start := time.Now()
	bigErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for i := 0; i < 2048; i++ { // 64 MiB
			if _, err := w.Write(chunk); err != nil {
				bigErr <- err
				return
			}
		}
		bigErr <- nil
	})
	s := startRun(t, h, Config{WriteTimeout: 2 * time.Second, MinWriteRate: 64 << 20})
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // about 8 MiB/s: steady, far below 64 MiB/s
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			case <-time.After(8 * time.Millisecond): // the scenario: a trickle
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-bigErr:
		if err == nil {
			t.Fatal("64 MiB written to a client reading at 8 MiB/s with a minimum rate of 64 MiB/s")
		}
		t.Logf("cut after %v: %v", time.Since(start), err)
	case <-time.After(30 * time.Second): // an upper bound: the bound cuts it within a few seconds
		t.Fatal("a trickling reader held its connection for 30 s")
	}
}

// A client that sends a request's headers and then only part of its body
// is cut off after ReadTimeout: net/http's own ReadTimeout is off (a
// request without a body would pay for setting and clearing it), so the
// server sets the deadline itself for requests that have a body (R54).
func TestSlowBodyCut_R54(t *testing.T) {
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
	})
	s := startRun(t, h, Config{ReadTimeout: 300 * time.Millisecond})
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npart of it") // and nothing more
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("a body cut short read to its end")
		}
	case <-time.After(10 * time.Second): // an upper bound: the deadline cuts it after 300 ms
		t.Fatal("a stalled request body held the handler for 10 s")
	}
}
