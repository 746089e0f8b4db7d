package agent

import (
	"iter"
	"strings"
)

// The TOML library reports the line of a syntax or type error but not of a
// key it did not decode, nor of a value that fails validation. keyIndex
// finds them: a line scanner that knows tables, arrays of tables, dotted
// and quoted keys, multi-line strings and multi-line arrays, which is all a
// configuration file needs. A key it cannot place gets no line, never a
// wrong one.

type keyLine struct {
	key  string // dotted, as toml.Key.String writes it
	line int
}

type keyIndex struct {
	keys []keyLine // in file order
	apps []int     // the lines of the [[app]] headers
	head int       // the line of the first table header, 0 if none
}

func scanKeys(src string) keyIndex {
	var idx keyIndex
	table, closer, depth := "", "", 0
	for n, line := range strings.Split(src, "\n") {
		ln := n + 1
		switch {
		case closer != "":
			if strings.Contains(line, closer) {
				closer = ""
			}
			continue
		case depth > 0:
			depth += nesting(line)
			continue
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#':
			continue
		case strings.HasPrefix(t, "[["):
			table = keyName(strings.TrimPrefix(before(t, "]]"), "[["))
			idx.header(table, ln)
			if table == "app" {
				idx.apps = append(idx.apps, ln)
			}
			continue
		case t[0] == '[':
			table = keyName(strings.TrimPrefix(before(t, "]"), "["))
			idx.header(table, ln)
			continue
		}
		lhs, rhs, ok := cutUnquoted(t, '=')
		if !ok {
			continue
		}
		k := keyName(lhs)
		if table != "" {
			k = table + "." + k
		}
		idx.add(k, ln)
		for _, q := range []string{`"""`, `'''`} {
			if strings.Count(rhs, q)%2 == 1 {
				closer = q
			}
		}
		depth = nesting(rhs)
	}
	return idx
}

func (idx *keyIndex) add(k string, line int) { idx.keys = append(idx.keys, keyLine{k, line}) }

func (idx *keyIndex) header(k string, line int) {
	if idx.head == 0 {
		idx.head = line
	}
	idx.add(k, line)
}

// lineOf returns the line of the first key k, else of its longest prefix
// that is a key, else 0.
func (idx *keyIndex) lineOf(k string) int { return idx.find(k, 0, 1<<62) }

// lineIn returns the line of key k inside the app-th [[app]] (app < 0: the
// top level, before any table), else of its longest prefix there, else 0.
func (idx *keyIndex) lineIn(k string, app int) int {
	from, to := 0, 1<<62
	switch {
	case app < 0 && idx.head > 0:
		to = idx.head
	case app >= 0 && app < len(idx.apps):
		from = idx.apps[app]
		if app+1 < len(idx.apps) {
			to = idx.apps[app+1]
		}
	case app >= 0:
		return 0
	}
	return idx.find(k, from, to)
}

func (idx *keyIndex) find(k string, from, to int) int {
	for k != "" {
		for _, kl := range idx.keys {
			if kl.key == k && kl.line >= from && kl.line < to {
				return kl.line
			}
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// keyName normalizes a (possibly dotted, possibly quoted) key.
func keyName(s string) string {
	var parts []string
	for {
		part, rest, more := cutUnquoted(s, '.')
		part = strings.TrimSpace(part)
		if len(part) >= 2 && (part[0] == '"' || part[0] == '\'') {
			part = part[1 : len(part)-1]
		}
		if part == "" || strings.ContainsFunc(part, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) {
			part = `"` + part + `"`
		}
		parts = append(parts, part)
		if !more {
			return strings.Join(parts, ".")
		}
		s = rest
	}
}

// unquoted yields the bytes of s that are outside quoted strings, with
// their index; the quote characters themselves are not yielded.
func unquoted(s string) iter.Seq2[int, byte] {
	return func(yield func(int, byte) bool) {
		var q byte
		for i := 0; i < len(s); i++ {
			switch b := s[i]; {
			case q == '"' && b == '\\':
				i++
			case q != 0 && b == q:
				q = 0
			case q != 0:
			case b == '"' || b == '\'':
				q = b
			default:
				if !yield(i, b) {
					return
				}
			}
		}
	}
}

// cutUnquoted cuts s at the first c outside a quoted string.
func cutUnquoted(s string, c byte) (string, string, bool) {
	for i, b := range unquoted(s) {
		if b == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// nesting counts the brackets and braces s opens minus those it closes,
// outside strings and comments.
func nesting(s string) int {
	n := 0
	for _, b := range unquoted(s) {
		switch b {
		case '#':
			return n
		case '[', '{':
			n++
		case ']', '}':
			n--
		}
	}
	return n
}

func before(s, sep string) string {
	if i := strings.Index(s, sep); i >= 0 {
		return s[:i]
	}
	return s
}
