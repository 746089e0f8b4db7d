package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
)

// maxPreGrow bounds the memory reserved for a body before it arrives.
const maxPreGrow = 64 << 10

// Bytes fetches url into memory, failing if the body exceeds maxLen bytes.
// A 404 wraps ErrNotFound; any other status than 200 is a *StatusError. It
// reads at most maxLen+1 bytes whatever the response's Content-Length says,
// and memory grows with the bytes received, not with the Content-Length.
func (f *Fetcher) Bytes(ctx context.Context, url string, maxLen int64) ([]byte, error) {
	b, err := f.bytes(ctx, url, maxLen)
	return b, wrap(url, err)
}

func (f *Fetcher) bytes(ctx context.Context, url string, maxLen int64) ([]byte, error) {
	if maxLen <= 0 {
		return nil, fmt.Errorf("limit %d is not positive", maxLen)
	}
	resp, w, err := f.get(ctx, url, nil, f.opts.Timeout)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		drain(resp.Body)
		return nil, &StatusError{Code: resp.StatusCode, Status: resp.Status}
	}
	if resp.ContentLength > maxLen {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the limit of %d bytes", ErrTooLarge, resp.ContentLength, maxLen)
	}
	// Content-Length is the sender's claim: the buffer starts at most
	// maxPreGrow bytes large and grows only with bytes that arrive.
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(min(resp.ContentLength, maxPreGrow)))
	}
	_, err = io.Copy(&buf, &countReader{r: io.LimitReader(resp.Body, plusOne(maxLen)), w: w})
	// A cancelled request can end the body with a plain EOF: the watch
	// knows whether the body really ended.
	if err := w.cause(err); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > maxLen {
		return nil, fmt.Errorf("%w: body exceeds the limit of %d bytes", ErrTooLarge, maxLen)
	}
	return buf.Bytes(), nil
}

// plusOne is n+1, the read limit that tells a body of n bytes from a
// longer one, saturating at math.MaxInt64 (where n+1 would wrap negative and
// io.LimitReader would read nothing).
func plusOne(n int64) int64 {
	if n == math.MaxInt64 {
		return n
	}
	return n + 1
}

// countReader reports every byte read to the rate watchdog.
type countReader struct {
	r io.Reader
	w *watch
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.w.add(n)
	return n, err
}

// maxDrain is how much of an error response's body is read so that the
// connection can be reused (a 404 for the next root is part of every
// refresh); a longer body is left unread and the connection closed.
const maxDrain = 4 << 10

// drain reads and discards at most maxDrain bytes of body.
func drain(body io.Reader) {
	io.CopyN(io.Discard, body, maxDrain)
}
