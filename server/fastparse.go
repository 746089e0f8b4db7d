package server

import "bytes"

// The fast path's request parser. It accepts a small, strict subset of
// HTTP/1.1: the requests clients make for a repository's metadata (a GET
// or HEAD of a plain path, with a Host, without a body, a query, a range
// or a precondition). Everything else, including everything it is unsure
// of, is net/http's to answer: the parser never answers or refuses a
// request itself, it only says "mine" or "not mine". For every request it
// calls its own, net/http's parser reads the same method, path, Host and
// keep-alive (FuzzFastParseAgreesWithNetHTTP), so the fast path cannot
// answer a request that net/http would read differently.

// fastRequest is a request the fast path answers.
type fastRequest struct {
	head  bool   // HEAD, else GET
	path  string // the request target: "/" and then only fastPathByte bytes
	close bool   // Connection: close
}

type fastState int

const (
	fastMore fastState = iota // no whole request yet; nothing so far makes it net/http's
	fastMine                  // a whole request, answered by the fast path
	fastNot                   // net/http's request (and the connection's from here on)
)

// parseFast reads the request at the start of b: with fastMine it returns
// the request and the bytes it takes.
func parseFast(b []byte) (r fastRequest, n int, st fastState) {
	hosts := 0
	for line := 0; ; line++ {
		nl := bytes.IndexByte(b[n:], '\n')
		if nl < 0 {
			if line == 0 && !methodPrefix(b) {
				return r, 0, fastNot // no need to wait for the rest
			}
			return r, 0, fastMore
		}
		nl += n
		if nl == n || b[nl-1] != '\r' {
			return r, 0, fastNot // a bare LF
		}
		l := b[n : nl-1]
		n = nl + 1
		switch {
		case line == 0:
			var ok bool
			if r, ok = fastRequestLine(l); !ok {
				return r, 0, fastNot
			}
		case len(l) == 0: // the end of the header
			if hosts != 1 {
				return r, 0, fastNot
			}
			return r, n, fastMine
		default:
			name, value, ok := headerField(l)
			if !ok {
				return r, 0, fastNot
			}
			switch {
			case asciiEqualFold(name, "host"):
				if !fastHost(value) {
					return r, 0, fastNot
				}
				hosts++
			case asciiEqualFold(name, "connection"):
				close, ok := connectionTokens(value)
				if !ok {
					return r, 0, fastNot
				}
				r.close = r.close || close
			case notFastHeader(name):
				return r, 0, fastNot
			}
		}
	}
}

// methodPrefix reports whether b could still become "GET " or "HEAD ".
func methodPrefix(b []byte) bool {
	for _, m := range [...]string{"GET ", "HEAD "} {
		k := min(len(b), len(m))
		if string(b[:k]) == m[:k] {
			return true
		}
	}
	return false
}

// fastRequestLine parses "GET /path HTTP/1.1" (or HEAD).
func fastRequestLine(l []byte) (r fastRequest, ok bool) {
	var rest []byte
	switch {
	case len(l) > 4 && string(l[:4]) == "GET ":
		rest = l[4:]
	case len(l) > 5 && string(l[:5]) == "HEAD ":
		r.head, rest = true, l[5:]
	default:
		return r, false
	}
	const version = " HTTP/1.1"
	if len(rest) <= len(version) || string(rest[len(rest)-len(version):]) != version {
		return r, false
	}
	target := rest[:len(rest)-len(version)]
	if len(target) > maxPathLen || target[0] != '/' {
		return r, false
	}
	for _, c := range target {
		if !fastPathByte(c) {
			return r, false
		}
	}
	r.path = string(target)
	return r, true
}

// fastPathByte: letters, digits, '-', '.', '_' and '/'. A path with
// anything else (a query, an escape, a space) is net/http's.
func fastPathByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '/'
}

// headerField splits "Name: value" (RFC 9112 field-line) and trims the
// value's optional white space. A name that is not a token, a line that
// starts with white space (obsolete folding) or a value with a control
// character other than HTAB is not the fast path's.
func headerField(l []byte) (name, value []byte, ok bool) {
	colon := -1
	for i, c := range l {
		if c == ':' {
			colon = i
			break
		}
		if !tokenByte(c) {
			return nil, nil, false
		}
	}
	if colon <= 0 {
		return nil, nil, false
	}
	value = l[colon+1:]
	for _, c := range value {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	return l[:colon], value, true
}

// tokenByte: RFC 9110 tchar.
func tokenByte(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// fastHost: a non-empty host[:port] of letters, digits, '-', '.', '_',
// ':', '[' and ']' (a subset of what net/http accepts).
func fastHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// connectionTokens reads a Connection header: ok only when every token is
// close or keep-alive (an upgrade or a hop-by-hop header name is
// net/http's); close when one is close.
func connectionTokens(v []byte) (close, ok bool) {
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
			tok = tok[1:]
		}
		for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
			tok = tok[:len(tok)-1]
		}
		switch {
		case len(tok) == 0:
		case asciiEqualFold(tok, "close"):
			close = true
		case asciiEqualFold(tok, "keep-alive"):
		default:
			return false, false
		}
	}
	return close, true
}

// notFastHeader reports the header names that make a request net/http's:
// a body (and how it is framed), an expectation, an upgrade, a range or a
// precondition (RFC 9110), which ServeContent answers.
func notFastHeader(name []byte) bool {
	for _, h := range [...]string{
		"content-length", "transfer-encoding", "expect", "upgrade", "te", "trailer",
		"range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
		"http2-settings",
	} {
		if asciiEqualFold(name, h) {
			return true
		}
	}
	return false
}

// asciiEqualFold compares b with the lower-case ASCII s, ignoring the case
// of b's letters.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
