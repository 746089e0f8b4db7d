package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/ferry-updates/ferry/internal/safefile"
)

// Want is what a downloaded file must be: its exact length and hashes
// (algorithm name as in TUF, e.g. "sha256", to raw digest).
type Want struct {
	Length int64
	Hashes map[string][]byte
}

// Progress reports bytes done of total.
type Progress func(done, total int64)

const (
	// bufSize is the one buffer a download holds: large enough that
	// hashing and writing run in big chunks.
	bufSize = 256 << 10
	// maxResumes is how many times one File call resumes (after the
	// connection broke, or after a deadline or minimum-rate failure that
	// made progress), when the server supports Range.
	maxResumes = 3
	// maxRequests bounds the requests of one File call, for servers that
	// answer a Range request with a shorter range than asked.
	maxRequests = 64
)

// File downloads url into the file at path (created 0600 if missing),
// resuming from the bytes already there with a Range request, never writing
// beyond want.Length. A symlink at path is never followed, and an existing
// file is used only if it is a regular file of this user with one link and
// no group or other write permission (else an error wrapping
// safefile.ErrUnsafe, and the file is left alone). It hashes the whole file (including bytes from an
// earlier attempt) and returns nil only if length and every known hash match.
// On a mismatch (ErrMismatch, or ErrTooLarge for bytes beyond want.Length)
// the partial file is removed.
//
// Known hash algorithms are sha256 and sha512; others are ignored, and Want
// must list at least one known one. Each request's deadline is
// Options.Timeout plus the time the remaining bytes take at MinRate, so a
// transfer that keeps the minimum rate always finishes; when the server
// supports Range, a request cut off by the deadline or the minimum rate
// after making progress, or by a broken connection, is resumed (at most
// maxResumes times). An interrupted download (deadline, minimum rate,
// cancelled context) leaves the partial file for a later call to resume.
// On success the file is synced to disk; the caller moves it into place.
func (f *Fetcher) File(ctx context.Context, url, path string, want Want, progress Progress) error {
	return wrap(url, f.file(ctx, url, path, want, progress))
}

func (f *Fetcher) file(ctx context.Context, url, path string, want Want, progress Progress) error {
	if want.Length < 0 {
		return fmt.Errorf("negative length %d", want.Length)
	}
	hs, err := newHashes(want.Hashes)
	if err != nil {
		return err
	}
	fh, err := safefile.OpenPartial(path) // never through a planted symlink (R24, R51)
	if err != nil {
		return err
	}
	d := &download{f: f, url: url, file: fh, want: want, hashes: hs, progress: progress, buf: make([]byte, bufSize)}
	err = d.run(ctx)
	if cerr := fh.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", path, cerr)
	}
	if errors.Is(err, ErrMismatch) || errors.Is(err, ErrTooLarge) {
		if rerr := os.Remove(path); rerr != nil {
			err = fmt.Errorf("%w (and removing the file failed: %v)", err, rerr)
		}
	}
	return err
}

// download is the state of one File call: the file holds exactly off bytes
// and hashes have seen exactly those bytes.
type download struct {
	f        *Fetcher
	url      string
	file     *os.File
	want     Want
	hashes   []*digest
	progress Progress
	buf      []byte
	off      int64
	rangeOK  bool // the server has shown it supports Range
}

func (d *download) run(ctx context.Context) error {
	if err := d.rehash(); err != nil {
		return err
	}
	d.report()
	resumes, restarted := 0, false
	for n := 0; d.off < d.want.Length; n++ {
		if n == maxRequests {
			return fmt.Errorf("gave up after %d requests at byte %d of %d", n, d.off, d.want.Length)
		}
		before := d.off
		err := d.request(ctx)
		var se *StatusError
		switch {
		case err == nil:
		case errors.As(err, &se) && se.Code == http.StatusRequestedRangeNotSatisfiable && !restarted:
			restarted = true // the server has fewer bytes than we do: start over
			if err := d.reset(); err != nil {
				return err
			}
		case d.rangeOK && resumes < maxResumes && ctx.Err() == nil && resumable(err, d.off > before):
			resumes++
		default:
			return err
		}
	}
	return d.finish()
}

// resumable reports whether a Range request may resume after err: a
// connection that broke mid-transfer, or a deadline or minimum-rate
// failure of a request that made progress (a link that slowed down for a
// while, not a server that stalls from the start).
func resumable(err error, progressed bool) bool {
	if errors.Is(err, ErrTimeout) || errors.Is(err, ErrTooSlow) {
		return progressed
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// rehash reads back the bytes an earlier attempt left in the file, so the
// final hashes cover the whole file, not only the bytes fetched now.
func (d *download) rehash() error {
	st, err := d.file.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", d.file.Name())
	}
	if st.Size() > d.want.Length {
		return d.reset()
	}
	n, err := io.CopyBuffer(hashWriter(d.hashes), io.LimitReader(d.file, st.Size()), d.buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", d.file.Name(), err)
	}
	if n != st.Size() {
		return fmt.Errorf("read %s: got %d of %d bytes", d.file.Name(), n, st.Size())
	}
	d.off = n
	return nil
}

// reset empties the file and the hashes.
func (d *download) reset() error {
	if err := d.file.Truncate(0); err != nil {
		return err
	}
	if _, err := d.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	for _, h := range d.hashes {
		h.h.Reset()
	}
	d.off = 0
	return nil
}

// request makes one GET, from byte off on, and appends its body.
func (d *download) request(ctx context.Context) error {
	hdr := http.Header{}
	if d.off > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", d.off))
	}
	resp, w, err := d.f.get(ctx, d.url, hdr, d.f.fileTimeout(d.want.Length-d.off))
	if err != nil {
		return err
	}
	defer w.stop()
	defer resp.Body.Close()
	var n int64 // bytes this response must carry
	switch {
	case resp.StatusCode == http.StatusPartialContent && d.off > 0:
		end, err := checkContentRange(resp.Header.Get("Content-Range"), d.off, d.want.Length)
		if err != nil {
			return err
		}
		d.rangeOK = true
		n = end + 1 - d.off
	case resp.StatusCode == http.StatusOK:
		if err := d.reset(); err != nil {
			return err
		}
		d.rangeOK = resp.Header.Get("Accept-Ranges") == "bytes"
		n = d.want.Length
	default:
		drain(resp.Body)
		return &StatusError{Code: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > n {
		return fmt.Errorf("%w: Content-Length %d, more than the %d bytes expected (length %d)",
			ErrTooLarge, resp.ContentLength, n, d.want.Length)
	}
	if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 && resp.ContentLength < n {
		return &MismatchError{What: "length", Want: strconv.FormatInt(n, 10), Got: strconv.FormatInt(resp.ContentLength, 10)}
	}
	return d.copy(&countReader{r: resp.Body, w: w}, n, w)
}

// checkContentRange parses "bytes START-END/TOTAL" and checks that it
// starts at off and fits the expected length. It returns END.
func checkContentRange(v string, off, length int64) (int64, error) {
	bad := func() (int64, error) {
		return 0, fmt.Errorf("%w: Content-Range %q does not match the request for bytes %d- of %d", ErrMismatch, v, off, length)
	}
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return bad()
	}
	rng, total, ok := strings.Cut(rest, "/")
	s, e, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return bad()
	}
	start, err1 := strconv.ParseInt(s, 10, 64)
	end, err2 := strconv.ParseInt(e, 10, 64)
	if err1 != nil || err2 != nil || start != off || end < start {
		return bad()
	}
	if total != "*" {
		t, err := strconv.ParseInt(total, 10, 64)
		if err != nil || t < length {
			return bad()
		}
		if t > length {
			return 0, fmt.Errorf("%w: Content-Range %q: the file has %d bytes, length is %d", ErrTooLarge, v, t, length)
		}
	}
	if end >= length {
		return 0, fmt.Errorf("%w: Content-Range %q goes beyond length %d", ErrTooLarge, v, length)
	}
	return end, nil
}

// copy appends exactly n bytes of body to the file and the hashes; one more
// byte is ErrTooLarge and is never written.
func (d *download) copy(body io.Reader, n int64, w *watch) error {
	for got := int64(0); got < n; {
		chunk := d.buf
		if rem := n - got; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		m, err := io.ReadFull(body, chunk)
		if m > 0 {
			if werr := d.append(chunk[:m]); werr != nil {
				return werr
			}
			got += int64(m)
		}
		if err != nil {
			if c := w.cause(nil); c != nil {
				return c // deadline, minimum rate or the caller's context
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: connection ended at byte %d of %d", io.ErrUnexpectedEOF, d.off, d.want.Length)
			}
			return w.cause(err)
		}
	}
	// Exactly n bytes arrived. A further byte is data beyond the signed
	// length; a read error here is harmless since the hashes decide.
	var one [1]byte
	if m, _ := body.Read(one[:]); m > 0 {
		return fmt.Errorf("%w: more than the expected length of %d bytes", ErrTooLarge, d.want.Length)
	}
	return nil
}

func (d *download) append(p []byte) error {
	if _, err := d.file.Write(p); err != nil {
		return fmt.Errorf("write %s: %w", d.file.Name(), err)
	}
	for _, h := range d.hashes {
		h.h.Write(p)
	}
	d.off += int64(len(p))
	d.report()
	return nil
}

func (d *download) report() {
	if d.progress != nil {
		d.progress(d.off, d.want.Length)
	}
}

// finish checks length and hashes of the whole file and syncs it.
func (d *download) finish() error {
	if d.off != d.want.Length {
		return &MismatchError{What: "length", Want: strconv.FormatInt(d.want.Length, 10), Got: strconv.FormatInt(d.off, 10)}
	}
	if err := checkHashes(d.hashes); err != nil {
		return err
	}
	if err := d.file.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", d.file.Name(), err)
	}
	return nil
}
