package server

import (
	"log/slog"
	"net/http"
	"time"
)

// accessLog logs one line per request (method, path, status, bytes,
// duration_ms in milliseconds, remote, proto) and, for each write of the
// response, extends the connection's write deadline by write, so that the
// server's WriteTimeout limits a stall rather than a whole download.
func accessLog(log *slog.Logger, write time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rc := http.NewResponseController(w)
		if r.ContentLength == 0 {
			// Nothing more to read: the read deadline must not end the
			// request while the response is still being written.
			_ = rc.SetReadDeadline(time.Time{})
		}
		lw := &logWriter{ResponseWriter: w, rc: rc, write: write, status: http.StatusOK}
		h.ServeHTTP(lw, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", lw.status),
			slog.Int64("bytes", lw.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
			slog.String("proto", r.Proto),
		)
	})
}

// logWriter records the status and size of a response.
type logWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	write    time.Duration
	extended time.Time
	status   int
	bytes    int64
	wrote    bool
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
	if now := time.Now(); now.Sub(w.extended) > w.write/8 {
		_ = w.rc.SetWriteDeadline(now.Add(w.write))
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
	_ = w.rc.Flush()
}
