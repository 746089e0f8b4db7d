package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// deadlines bound the reading of a request's body (read) and the writing
// of one response: write is the longest stall, rate the slowest average.
type deadlines struct {
	read  time.Duration
	write time.Duration
	rate  int64 // bytes per second
}

// maxAllowance caps the time a response's bytes may take (about a year),
// far beyond any real download and far below time.Duration's range.
const maxAllowance = 365 * 24 * time.Hour

// at is the write deadline, at now, of a response that started at start
// and will have written n bytes: now plus the longest stall, but never
// later than start plus the longest stall plus n bytes at the minimum rate.
func (d deadlines) at(now, start time.Time, n int64) time.Time {
	allowance := maxAllowance
	if secs := float64(n) / float64(d.rate); secs < maxAllowance.Seconds() {
		allowance = time.Duration(secs * float64(time.Second))
	}
	dl := now.Add(d.write)
	if total := start.Add(d.write + allowance); total.Before(dl) {
		dl = total
	}
	return dl
}

// accessLog logs one line per request (method, path, status, bytes,
// duration_ms in milliseconds, remote, proto): to lines when it is set,
// else through log. It bounds the request's body by the read deadline,
// and for each write of the response extends the connection's write
// deadline (deadlines.at), so that the server's WriteTimeout limits a
// stall rather than a whole download, and the minimum rate limits the
// whole response. m (if not nil) counts the request.
//
// Deadlines cost a timer update each, so none is set that net/http has
// set already: it reads the headers under ReadHeaderTimeout and clears
// the read deadline (http.Server.ReadTimeout is left 0, see newServer),
// so only a request with a body gets one here; it sets the write deadline
// to WriteTimeout from the end of the headers, so the first extension is
// due only write/8 into the response, as every later one.
func accessLog(log *slog.Logger, lines *lineLog, dl deadlines, m *Metrics, h http.Handler) http.Handler {
	access := accessRecorder{log: log, lines: lines, m: m}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &logWriter{ResponseWriter: w, dl: dl, start: start, extended: start, status: http.StatusOK}
		if r.ContentLength != 0 {
			_ = lw.controller().SetReadDeadline(start.Add(dl.read))
		}
		h.ServeHTTP(lw, r)
		now := time.Now()
		access.record(r.Context(), &requestLine{time: now, method: r.Method, path: r.URL.Path, status: lw.status, bytes: lw.bytes,
			duration: now.Sub(start), remote: r.RemoteAddr, proto: r.Proto})
	})
}

// accessRecorder logs a request (to lines when it is set, else through
// log) and counts it in m (if not nil): for net/http's requests
// (accessLog) and the fast path's alike.
type accessRecorder struct {
	log   *slog.Logger
	lines *lineLog
	m     *Metrics
}

func (a accessRecorder) record(ctx context.Context, l *requestLine) {
	a.m.observeRequest(l.path, l.status, l.bytes)
	if a.lines != nil {
		a.lines.log(l)
		return
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", l.method),
		slog.String("path", l.path),
		slog.Int("status", l.status),
		slog.Int64("bytes", l.bytes),
		slog.Float64("duration_ms", durationMillis(l.duration)),
		slog.String("remote", l.remote),
		slog.String("proto", l.proto),
	)
}

// logWriter records the status and size of a response and moves its write
// deadline.
type logWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController // made when first needed
	dl       deadlines
	start    time.Time
	extended time.Time // when the write deadline was last set (by net/http: before start)
	status   int
	bytes    int64
	wrote    bool
}

func (w *logWriter) controller() *http.ResponseController {
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	return w.rc
}

func (w *logWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.wrote = true
	// Extending costs a timer reset; do it at most every write/8.
	if now := time.Now(); now.Sub(w.extended) > w.dl.write/8 {
		_ = w.controller().SetWriteDeadline(w.dl.at(now, w.start, w.bytes+int64(len(p))))
		w.extended = now
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer
// (Flush, deadlines).
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes through for streaming handlers.
func (w *logWriter) Flush() {
	_ = w.controller().Flush()
}

// ReadFrom copies src through Write (so that the bytes are counted and the
// deadline moves) with a pooled buffer: io.Copy would otherwise allocate
// 32 KiB for every response that http.ServeContent sends.
func (w *logWriter) ReadFrom(src io.Reader) (int64, error) {
	return copyBuffered(writerOnly{w}, src)
}

// writerOnly hides every method but Write (so io.CopyBuffer does not call
// ReadFrom again).
type writerOnly struct{ io.Writer }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBuffered is io.Copy with a buffer from a pool.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}
