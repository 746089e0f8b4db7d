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
// value. Under load that was about 8 % of the server's CPU; this is one
// pass over a pooled buffer. Each line is one Write, made under a lock, so
// lines never interleave and any io.Writer will do.
type lineLog struct {
	mu sync.Mutex
	w  io.Writer
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

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l *lineLog) log(r *requestLine) {
	bp := lineBufs.Get().(*[]byte)
	b := r.appendJSON((*bp)[:0])
	l.mu.Lock()
	_, _ = l.w.Write(b) // as slog: a failing log does not fail the request
	l.mu.Unlock()
	if cap(b) <= 64<<10 { // a huge path is not kept
		*bp = b
		lineBufs.Put(bp)
	}
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
