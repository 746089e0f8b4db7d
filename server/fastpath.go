package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Run accepts connections and makes their TLS handshakes itself (conns
// below). A connection that negotiates HTTP/2 goes to net/http at once.
// An HTTP/1.1 connection is read here, and while its requests are plain
// GETs and HEADs of files a FastFiles holds in memory (timestamp.json,
// nearly all of a repository's requests, and small files) they are
// answered here, from bytes built once per file: net/http's parsing,
// header maps and per-request allocations were a third of the CPU of
// serving timestamp.json (BENCHMARKS.md). The first request that is
// anything else (parseFast decides) goes to net/http with the bytes read
// so far, and so does every later request of that connection: errors,
// ranges, conditional requests, the API, the dashboard.

// FastFiles answers plain GETs and HEADs of files held in memory without
// net/http (Config.Fast). The handler Repository returns is one.
type FastFiles interface {
	// fastFile returns the file for a request path, or nil when the
	// request is the Handler's.
	fastFile(path string) *inMemory
}

// fastMaxBody is the largest file the fast path answers: header and body
// go out in one write (one or two TLS records), under one write deadline.
const fastMaxBody = 16 << 10

// fastBuffer is a connection's request buffer: a request whose header
// does not fit is net/http's (which allows MaxHeaderBytes).
const fastBuffer = 4 << 10

// fastFile answers the requests ServeHTTP would answer from memory with
// the whole body: files remembered (timestamp.json, small files) and
// unchanged.
func (h *repository) fastFile(p string) *inMemory {
	name, ok := servable(p)
	if !ok {
		return nil
	}
	m, ok := h.beneath.lookup(name)
	if !ok || len(m.body) > fastMaxBody {
		return nil
	}
	return m
}

// conns is Run's accept loop and the fast path.
type conns struct {
	ln     net.Listener // the limited listener
	tls    *tls.Config  // with NextProtos
	files  FastFiles    // nil: every connection is net/http's
	http   *handoff     // what net/http serves
	errLog *log.Logger  // as net/http's ErrorLog
	access accessRecorder
	dl     deadlines
	header time.Duration // ReadHeaderTimeout (and the TLS handshake's)
	idle   time.Duration

	closing atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	live    map[*conn]struct{}
}

// conn is a connection of the fast path, from accept until it is closed
// or handed to net/http.
type conn struct {
	tc   *tls.Conn
	idle atomic.Bool // waiting for a request (or in the handshake): Shutdown closes it
}

func (s *conns) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.live[c] = struct{}{}
		s.wg.Add(1)
		return true
	}
	delete(s.live, c)
	s.wg.Done()
	return true
}

// serve accepts until the listener is closed; after shutdown it returns
// http.ErrServerClosed. Like net/http, it waits and retries when the
// process is out of file descriptors or memory.
func (s *conns) serve() error {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.errLog.Printf("http: Accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &conn{tc: tls.Server(nc, s.tls)}
		c.idle.Store(true)
		if !s.track(c, true) {
			nc.Close()
			continue
		}
		go s.handle(c)
	}
}

// shutdown stops accepting, closes the connections that wait for a
// request and waits for the others to finish the response they are
// writing; when ctx ends first it closes them.
func (s *conns) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	s.ln.Close()
	for c := range s.live {
		if c.idle.Load() {
			c.tc.NetConn().Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.live {
			c.tc.NetConn().Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func (s *conns) handle(c *conn) {
	handed := false
	defer func() {
		if !handed {
			c.tc.Close()
		}
		s.track(c, false)
	}()
	tc := c.tc
	start := time.Now()
	_ = tc.SetDeadline(start.Add(s.header))
	if err := tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// What net/http answers a plain-text request on its TLS port.
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			s.errLog.Printf("http: TLS handshake error from %s: client sent an HTTP request to an HTTPS server", tc.RemoteAddr())
			return
		}
		s.errLog.Printf("http: TLS handshake error from %s: %v", tc.RemoteAddr(), err)
		return
	}
	if s.files == nil || tc.ConnectionState().NegotiatedProtocol == "h2" || s.closing.Load() {
		_ = tc.SetDeadline(time.Time{})
		c.idle.Store(false) // net/http's now: not for this shutdown to close
		s.http.give(tc)
		handed = true
		return
	}
	_ = tc.SetWriteDeadline(time.Time{})
	f := fastConn{conns: s, c: c, readDL: start.Add(s.header), remote: tc.RemoteAddr().String()}
	handed = f.serve()
}

// fastConn is the fast path's state of one HTTP/1.1 connection.
type fastConn struct {
	*conns
	c        *conn
	buf      [fastBuffer]byte
	n        int       // bytes in buf
	answered bool      // a request has been answered: the next may idle for IdleTimeout
	began    time.Time // when the request in buf began to arrive
	eof      bool      // the client has closed its side: nothing more comes
	out      []byte    // the response being written
	readDL   time.Time // the read deadline set last
	writeDL  time.Time // the write deadline set last (zero: none)
	remote   string
	dateSec  int64
	date     []byte // the Date header's value for dateSec
}

// serve answers requests until one is net/http's (it hands the connection
// over and returns true) or the connection ends.
func (f *fastConn) serve() bool {
	tc := f.c.tc
	now := time.Now()
	for {
		r, used, st := parseFast(f.buf[:f.n])
		switch st {
		case fastNot:
			return f.handOver()
		case fastMore:
			if f.n == len(f.buf) {
				return f.handOver()
			}
			if f.eof {
				return false // the client sent all it will
			}
			if f.n == 0 {
				// Between requests the connection may idle for
				// IdleTimeout (the first request must come
				// within ReadHeaderTimeout of the handshake's
				// start, as the deadline already says); the
				// deadline moves when it is later than that or
				// has fallen a sixteenth of it behind (a timer
				// update per request would cost more than the
				// rest of the bookkeeping).
				if want := now.Add(f.idle); f.answered && (f.readDL.After(want) || want.Sub(f.readDL) > f.idle/16) {
					_ = tc.SetReadDeadline(want)
					f.readDL = want
				}
			} else if want := f.began.Add(f.header); f.readDL.After(want) || f.answered && !f.readDL.Equal(want) {
				// A request begun must arrive whole within
				// ReadHeaderTimeout of its first byte (the first
				// of a connection, also of the handshake's start;
				// a later one, pipelined, gets its own).
				_ = tc.SetReadDeadline(want)
				f.readDL = want
			}
			// Waiting for a request, whole or in part, the connection
			// is idle, as net/http counts it: a shutdown closes it.
			f.c.idle.Store(true)
			if f.closing.Load() {
				return false
			}
			m, err := tc.Read(f.buf[f.n:])
			now = time.Now()
			if f.n == 0 {
				f.began = now
			}
			f.n += m
			if err != nil {
				if m == 0 {
					return false
				}
				// Bytes and the end together (a request, then
				// close_notify): answer what came first.
				f.eof = true
			}
			continue
		}
		f.c.idle.Store(false)
		file := f.files.fastFile(r.path)
		if file == nil {
			return f.handOver()
		}
		closing := r.close || f.closing.Load()
		f.answered = true
		bytes, err := f.answer(file, r.head, closing, now)
		end := time.Now()
		f.access.record(context.Background(), &requestLine{time: end, method: method(r.head), path: r.path,
			status: http.StatusOK, bytes: bytes, duration: end.Sub(now), remote: f.remote, proto: "HTTP/1.1"})
		if err != nil {
			return false
		}
		if closing {
			closeWriteAndWait(tc)
			return false
		}
		f.n = copy(f.buf[:], f.buf[used:f.n])
		now = end
		if f.n > 0 {
			f.began = end // a pipelined request's header deadline is its own
		}
	}
}

// closeWriteAndWait ends the connection as net/http does after a
// response with Connection: close: it sends close_notify and a FIN, and
// waits a moment before the full close, so that a client still writing
// does not get a reset that could take the response with it.
func closeWriteAndWait(tc *tls.Conn) {
	_ = tc.CloseWrite()
	time.Sleep(500 * time.Millisecond)
}

func method(head bool) string {
	if head {
		return http.MethodHead
	}
	return http.MethodGet
}

// answer writes the 200 response to a GET or HEAD of file: the bytes
// net/http writes for it (TestFastMatchesNetHTTP), in one write.
func (f *fastConn) answer(file *inMemory, head, closing bool, now time.Time) (int64, error) {
	b := append(f.out[:0], file.head...)
	if sec := now.Unix(); sec != f.dateSec || f.date == nil {
		f.dateSec = sec
		f.date = now.UTC().AppendFormat(f.date[:0], http.TimeFormat)
	}
	b = append(b, "Date: "...)
	b = append(b, f.date...)
	b = append(b, "\r\n"...)
	if closing {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	var n int64
	if !head {
		b = append(b, file.body...)
		n = int64(len(file.body))
	}
	f.out = b
	// The write deadline moves when it has fallen an eighth of
	// WriteTimeout behind, as logWriter's does.
	if want := f.dl.at(now, now, n); f.writeDL.IsZero() || want.Sub(f.writeDL) > f.dl.write/8 {
		_ = f.c.tc.SetWriteDeadline(want)
		f.writeDL = want
	}
	if _, err := f.c.tc.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// handOver gives the connection, with the bytes read and not answered, to
// net/http; it returns true, for serve. net/http sets its own deadlines
// for every request, and gives a request ReadHeaderTimeout from the moment
// it starts to read it: the request begun here keeps the deadline it has
// (from its first byte, replayConn), so that trickling half of it to the
// fast path cannot buy it more time (R54).
func (f *fastConn) handOver() bool {
	f.c.idle.Store(false) // net/http's now: not for this shutdown to close
	tc := f.c.tc
	limit := f.began.Add(f.header)
	if f.readDL.Before(limit) {
		limit = f.readDL
	}
	_ = tc.SetWriteDeadline(time.Time{})
	_ = tc.SetReadDeadline(limit)
	f.http.give(&replayConn{Conn: tc, rest: append([]byte(nil), f.buf[:f.n]...), limit: limit})
	return true
}

// replayConn is a TLS connection the fast path has read from: its reads
// return those bytes first. It has the *tls.Conn's ConnectionState, so
// net/http fills in Request.TLS for its requests. Until the end of the
// header of the request it carries (an empty line), no read deadline is
// later than limit.
type replayConn struct {
	*tls.Conn
	rest  []byte
	limit time.Time // zero once the header has been read
	lf    bool      // the last byte read, but for CRs, was LF
}

func (c *replayConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(c.rest) > 0 {
		n = copy(p, c.rest)
		c.rest = c.rest[n:]
	} else {
		n, err = c.Conn.Read(p)
	}
	if !c.limit.IsZero() {
		for _, b := range p[:n] {
			switch {
			case b == '\n' && c.lf:
				c.limit = time.Time{}
			case b == '\n':
				c.lf = true
			case b != '\r':
				c.lf = false
			}
		}
	}
	return n, err
}

func (c *replayConn) SetReadDeadline(t time.Time) error {
	if !c.limit.IsZero() && (t.IsZero() || t.After(c.limit)) {
		t = c.limit
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *replayConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// handoff is the listener net/http serves: it accepts the connections the
// fast path gives it.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// give passes c to net/http, or closes it when net/http has stopped.
func (h *handoff) give(c net.Conn) {
	select {
	case h.conns <- c:
	case <-h.done:
		c.Close()
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain-text HTTP request (as net/http checks).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}
