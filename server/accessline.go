package server

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// lineLog writes the access log as JSON lines, byte for byte what
// slog.NewJSONHandler writes for the same record (TestAccessLineMatchesSlog
// and FuzzAccessLineMatchesSlog compare them), without slog's generic
// machinery: a request's seven attributes do not fit in a slog.Record
// without an allocation, and the handler boxes and type-switches every
// value. Under load that was about 8 % of the server's CPU.
//
// Lines are collected and written together, whole and in order, at most
// lineDelay after the first of them (or at once when lineBuffer bytes are
// waiting): under load one write(2) carries hundreds of lines instead of
// one each (nginx's access_log ... buffer= flush=). close writes what is
// waiting and makes every later line a write of its own; Run calls it
// when it stops. A crash loses at most lineDelay of lines.
type lineLog struct {
	w     io.Writer
	delay time.Duration // 0: every line is written at once
	timer *time.Timer   // armed while lines wait

	mu      sync.Mutex
	pending []byte // lines not yet written
	spare   []byte // the buffer of the last write, for reuse
	armed   bool
	closed  bool

	wmu sync.Mutex // one write at a time, taken before mu is released: lines stay in order
}

const (
	lineDelay  = 10 * time.Millisecond
	lineBuffer = 64 << 10
)

func newLineLog(w io.Writer, delay time.Duration) *lineLog {
	l := &lineLog{w: w, delay: delay}
	l.timer = time.AfterFunc(time.Hour, l.flush)
	l.timer.Stop()
	return l
}

func (l *lineLog) log(r *requestLine) {
	l.mu.Lock()
	l.pending = r.appendJSON(l.pending)
	switch {
	case l.closed || l.delay <= 0 || len(l.pending) >= lineBuffer:
		l.writeLocked()
		return
	case !l.armed:
		l.armed = true
		l.timer.Reset(l.delay)
	}
	l.mu.Unlock()
}

// flush writes the waiting lines (the timer's function).
func (l *lineLog) flush() {
	l.mu.Lock()
	l.armed = false
	l.writeLocked()
}

// close writes the waiting lines; every later line is written at once.
func (l *lineLog) close() {
	l.mu.Lock()
	l.closed = true
	l.timer.Stop()
	l.writeLocked()
}

// writeLocked writes the waiting lines; it is called with mu held and
// releases it.
func (l *lineLog) writeLocked() {
	b := l.pending
	if len(b) == 0 {
		l.mu.Unlock()
		return
	}
	l.pending, l.spare = l.spare[:0], nil
	l.wmu.Lock()
	l.mu.Unlock()
	_, _ = l.w.Write(b) // as slog: a failing log does not fail the request
	l.wmu.Unlock()
	if cap(b) <= 2*lineBuffer { // a huge line's buffer is not kept
		l.mu.Lock()
		if l.spare == nil {
			l.spare = b[:0]
		}
		l.mu.Unlock()
	}
}

// requestLine is what the access log says about one request.
type requestLine struct {
	time     time.Time
	method   string
	path     string
	status   int
	bytes    int64
	duration time.Duration
	remote   string
	proto    string
}

// appendJSON appends the line as slog's JSON handler formats it: time
// (RFC 3339 with nanoseconds, trailing zeros dropped), level, msg, then
// the attributes in order; duration_ms is milliseconds with microsecond
// resolution, formatted as encoding/json formats a float64.
func (r *requestLine) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = r.time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":`...)
	b = appendJSONString(b, r.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	// 'f' with the shortest representation is what encoding/json writes
	// for 1e-6 <= |x| < 1e21; these values are 0 or at least 0.001.
	b = strconv.AppendFloat(b, durationMillis(r.duration), 'f', -1, 64)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, r.remote)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, r.proto)
	return append(b, "}\n"...)
}

// durationMillis is d in milliseconds, to the microsecond (the access
// log's duration_ms).
func durationMillis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// appendJSONString appends s as a JSON string, escaped as slog's JSON
// handler escapes it: '"', '\\' and control characters (\n, \r and \t
// by name, the others as \u00XX), invalid UTF-8 as \ufffd, and U+2028
// and U+2029; everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
