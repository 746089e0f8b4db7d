package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cache-Control values.
const (
	cacheImmutable   = "public, max-age=31536000, immutable"
	cacheRevalidate  = "no-cache"
	maxPathLen       = 1024
	maxETagCacheSize = 4096
	// maxInMemory is the largest file that changes in place (timestamp.json)
	// read whole into memory per request; larger ones are streamed.
	maxInMemory = 1 << 20
	// maxSmall is the largest immutable file (or other file) read whole
	// into memory, served from it and remembered (memo_linux.go): one
	// TLS record's worth, the most the fast path answers.
	maxSmall = fastMaxBody
)

// Repository returns a handler serving the public directory of a repository
// (DIR/public): /metadata/... and /targets/..., with ETag, conditional
// requests, Range and Cache-Control.
func Repository(publicDir string) (http.Handler, error) {
	root, err := os.OpenRoot(publicDir)
	if err != nil {
		return nil, fmt.Errorf("serve repository %s: %w", publicDir, err)
	}
	return &repository{root: root, beneath: newBeneath(root), etags: make(map[etagKey]string)}, nil
}

type repository struct {
	root    *os.Root
	beneath *beneath // nil: open through root

	mu    sync.Mutex
	etags map[etagKey]string // content hashes of metadata files
}

type etagKey struct {
	name  string
	size  int64
	mtime time.Time
}

func (h *repository) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := servable(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	cc := cacheControl(name)
	if m, ok := h.beneath.lookup(name); ok {
		m.serve(w, r)
		return
	}
	opened := time.Now()
	f, err := h.open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r) // directories are never listed
		return
	}
	mutable := changesInPlace(name, cc)
	if mutable && st.Size() <= maxInMemory || st.Size() <= maxSmall {
		// timestamp.json (read once, hashed and served from the same
		// bytes, so the ETag always matches the body) and small files:
		// served from memory, and remembered.
		body, err := readAll(f, st.Size())
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		etag, modtime := contentETagOf(body), time.Time{}
		if !mutable {
			if etag, err = h.etag(name, bytes.NewReader(body), st); err != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			if cc == cacheImmutable {
				// As serveFile: a file that may change in place
				// is validated by its ETag only.
				modtime = st.ModTime()
			}
		}
		m := newInMemory(name, cc, body, etag, modtime)
		h.beneath.remember(name, f, st, opened, m)
		m.serve(w, r)
		return
	}
	h.serveFile(w, r, name, cc, f, st)
}

func (h *repository) serveFile(w http.ResponseWriter, r *http.Request, name, cc string, f servedFile, st fs.FileInfo) {
	etag, err := h.etag(name, f, st)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setHeaders(w.Header(), name, cc, etag, contentType(name))
	modtime := st.ModTime()
	if cc != cacheImmutable {
		// A file that changes in place is validated by its ETag only:
		// Last-Modified has one-second resolution, and two timestamps
		// signed within a second must not look the same.
		modtime = time.Time{}
	}
	// A section reader knows the size: ServeContent's seeks cost no
	// system calls, and reads are preads.
	http.ServeContent(w, r, path.Base(name), modtime, io.NewSectionReader(f, 0, st.Size()))
}

// inMemory is a file served from memory (timestamp.json, small files),
// with the headers of a whole-body response built once.
type inMemory struct {
	name    string // for ServeContent's error messages
	body    []byte
	etag    string
	modtime time.Time // Last-Modified; zero for a file that may change in place (validated by ETag alone)
	changes bool      // changesInPlace: metadata that changes in place
	// The values of a 200 response's headers, shared by every response:
	// net/http only reads them, and each has cap 1, so an Add by anyone
	// downstream copies rather than writes into them.
	etagV, ccV, typeV, lengthV, modifiedV []string
	// head is the same response's status line and headers as net/http
	// writes them (keys sorted), but for Date, Connection and the blank
	// line: what the fast path sends (fastpath.go).
	head []byte
}

func newInMemory(name, cc string, body []byte, etag string, modtime time.Time) *inMemory {
	one := func(v string) []string { return []string{v}[:1:1] }
	m := &inMemory{name: path.Base(name), body: body, etag: etag, changes: changesInPlace(name, cc), etagV: one(etag), ccV: one(cc),
		typeV: one(contentType(name)), lengthV: one(strconv.Itoa(len(body)))}
	modified := ""
	// As ServeContent: no Last-Modified for a zero or epoch time.
	if !modtime.IsZero() && !modtime.Equal(time.Unix(0, 0)) {
		m.modtime = modtime
		m.modifiedV = one(modtime.UTC().Format(http.TimeFormat))
		modified = "Last-Modified: " + m.modifiedV[0] + "\r\n"
	}
	m.head = []byte("HTTP/1.1 200 OK\r\n" +
		"Accept-Ranges: bytes\r\n" +
		"Cache-Control: " + cc + "\r\n" +
		"Content-Length: " + m.lengthV[0] + "\r\n" +
		"Content-Type: " + m.typeV[0] + "\r\n" +
		"Etag: " + etag + "\r\n" +
		modified +
		"X-Content-Type-Options: nosniff\r\n")
	return m
}

var (
	nosniffV      = []string{"nosniff"}[:1:1]
	acceptRangesV = []string{"bytes"}[:1:1]
)

// serve answers r from memory. A plain GET or HEAD (the requests clients
// make) gets exactly the headers and body http.ServeContent would send
// (TestInMemoryMatchesServeContent) without its per-request work: header
// keys canonicalised and values allocated on every Set, preconditions
// parsed, the body copied through a LimitedReader. A conditional or Range
// request goes to ServeContent.
func (m *inMemory) serve(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	if !plainRequest(r) {
		setHeaders(hdr, m.name, m.ccV[0], m.etag, m.typeV[0])
		http.ServeContent(w, r, m.name, m.modtime, bytes.NewReader(m.body))
		return
	}
	// Keys in canonical form (textproto.CanonicalMIMEHeaderKey), as Set
	// would store them.
	hdr["Etag"] = m.etagV
	hdr["Cache-Control"] = m.ccV
	hdr["Content-Type"] = m.typeV
	hdr["X-Content-Type-Options"] = nosniffV
	hdr["Accept-Ranges"] = acceptRangesV
	hdr["Content-Length"] = m.lengthV
	if m.modifiedV != nil {
		hdr["Last-Modified"] = m.modifiedV
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.body)
	}
}

// plainRequest reports whether r has none of the headers that make
// ServeContent answer anything but the whole body (RFC 9110 preconditions
// and ranges). The server's parser stores header names canonicalised.
func plainRequest(r *http.Request) bool {
	for _, k := range [...]string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "Range", "If-Range"} {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	return true
}

func setHeaders(hdr http.Header, name, cc, etag, ctype string) {
	hdr.Set("ETag", etag)
	hdr.Set("Cache-Control", cc)
	hdr.Set("Content-Type", ctype)
	hdr.Set("X-Content-Type-Options", "nosniff")
}

// readAll reads the first size bytes of f.
func readAll(f io.ReaderAt, size int64) ([]byte, error) {
	body := make([]byte, size)
	n, err := f.ReadAt(body, 0)
	if n == len(body) {
		return body, nil
	}
	if err == nil || err == io.EOF {
		err = errors.New("file changed while reading")
	}
	return nil, err
}

// servedFile is an open file of the public directory.
type servedFile interface {
	io.ReaderAt
	io.Closer
	Stat() (fs.FileInfo, error)
}

// open opens a name that servable returned, never outside the public
// directory: with openat2 where the kernel has it, else through os.Root
// (with O_NONBLOCK where it exists, so a FIFO cannot block the open).
func (h *repository) open(name string) (servedFile, error) {
	if h.beneath != nil {
		return h.beneath.open(name)
	}
	f, err := h.root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// servable maps a request path to a name relative to the public directory,
// or reports false for anything that is not a plain file name under
// metadata/ or targets/: empty, "." or ".." segments, dot files, NUL,
// backslashes, or names that are not local.
func servable(p string) (string, bool) {
	if len(p) > maxPathLen {
		return "", false
	}
	name, ok := strings.CutPrefix(p, "/")
	if !ok || !(strings.HasPrefix(name, "metadata/") || strings.HasPrefix(name, "targets/")) {
		return "", false
	}
	for rest := name; ; {
		seg, more, cut := strings.Cut(rest, "/")
		if seg == "" || seg[0] == '.' || strings.ContainsAny(seg, "\\\x00") {
			return "", false
		}
		if !cut {
			break
		}
		rest = more
	}
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", false
	}
	return name, true
}

func isMetadata(name string) bool { return strings.HasPrefix(name, "metadata/") }

// changesInPlace reports whether name (with Cache-Control cc) is metadata
// that changes in place (timestamp.json and the like): read whole up to
// maxInMemory, hashed for its ETag, and given memo slots of its own.
func changesInPlace(name, cc string) bool { return isMetadata(name) && cc != cacheImmutable }

func cacheControl(name string) string {
	base := path.Base(name)
	if isMetadata(name) && versionedMetadata(base) {
		return cacheImmutable
	}
	if !isMetadata(name) && hashedTarget(base) {
		return cacheImmutable
	}
	return cacheRevalidate
}

// versionedMetadata reports whether base is N.ROLE.json (consistent
// snapshot metadata): digits, a dot, at least one character, ".json".
// (A regular expression cost more than the rest of choosing the headers.)
func versionedMetadata(base string) bool {
	i := 0
	for i < len(base) && '0' <= base[i] && base[i] <= '9' {
		i++
	}
	rest := base[i:]
	return i > 0 && len(rest) > len("..json") && rest[0] == '.' && strings.HasSuffix(rest, ".json")
}

// hashedTarget reports whether base is HEX.FILE with a sha256 or sha512
// hex prefix (lower case).
func hashedTarget(base string) bool {
	i := 0
	for i < len(base) && ('0' <= base[i] && base[i] <= '9' || 'a' <= base[i] && base[i] <= 'f') {
		i++
	}
	return (i == 64 || i == 128) && i < len(base) && base[i] == '.'
}

func contentType(name string) string {
	if isMetadata(name) && strings.HasSuffix(name, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

// etag is a strong validator. For metadata it is the sha256 of the content,
// so timestamp.json's ETag changes exactly when its bytes do; hashes of
// immutable (version-prefixed) metadata are cached by name, size and
// modification time. Targets are immutable and can be large: their ETag is
// derived from size and modification time.
func (h *repository) etag(name string, f io.ReaderAt, st fs.FileInfo) (string, error) {
	if !isMetadata(name) {
		return `"` + strconv.FormatInt(st.Size(), 16) + "-" + strconv.FormatInt(st.ModTime().UnixNano(), 16) + `"`, nil
	}
	if cacheControl(name) != cacheImmutable {
		return contentETag(f, st.Size())
	}
	key := etagKey{name: name, size: st.Size(), mtime: st.ModTime()}
	h.mu.Lock()
	tag, ok := h.etags[key]
	h.mu.Unlock()
	if ok {
		return tag, nil
	}
	tag, err := contentETag(f, st.Size())
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	if len(h.etags) >= maxETagCacheSize {
		clear(h.etags)
	}
	h.etags[key] = tag
	h.mu.Unlock()
	return tag, nil
}

// contentETag is the quoted hex sha256 of the first size bytes of f.
func contentETag(f io.ReaderAt, size int64) (string, error) {
	sum := sha256.New()
	n, err := copyBuffered(sum, io.NewSectionReader(f, 0, size))
	if err != nil {
		return "", err
	}
	if n != size {
		return "", errors.New("file changed while hashing")
	}
	return `"` + hex.EncodeToString(sum.Sum(nil)) + `"`, nil
}

// contentETagOf is the quoted hex sha256 of b.
func contentETagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}
