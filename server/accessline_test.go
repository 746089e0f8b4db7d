package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogLine is what slog.NewJSONHandler writes for l: the format the
// access log had before lineLog, and still has through Config.Logger.
func slogLine(t testing.TB, l *requestLine) string {
	t.Helper()
	var buf bytes.Buffer
	r := slog.NewRecord(l.time, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("method", l.method),
		slog.String("path", l.path),
		slog.Int("status", l.status),
		slog.Int64("bytes", l.bytes),
		slog.Float64("duration_ms", durationMillis(l.duration)),
		slog.String("remote", l.remote),
		slog.String("proto", l.proto),
	)
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestAccessLineMatchesSlog: the access log's own encoder writes what
// slog's JSON handler writes, byte for byte, also for hostile paths
// (quotes, control characters, invalid UTF-8, line separators: a client
// must not be able to forge a second line or break the JSON).
func TestAccessLineMatchesSlog(t *testing.T) {
	utc := time.Date(2026, 12, 2, 6, 0, 1, 234567890, time.UTC)
	east := time.FixedZone("", 5*3600+30*60)
	for _, c := range []requestLine{
		{utc, "GET", "/metadata/timestamp.json", 200, 469, 123456 * time.Nanosecond, "127.0.0.1:40000", "HTTP/1.1"},
		{utc.Truncate(time.Second), "HEAD", "/", 0, 0, 0, "", ""},
		{time.Date(2026, 1, 2, 3, 4, 5, 100, east), "POST", "/api/v1/events", 413, 1 << 40, 90 * time.Minute, "[::1]:1", "HTTP/2.0"},
		{utc, "GET", "/a\"b\\c\nd\re\tf\x00\x01\x1f\x7f", 404, 19, time.Millisecond, "x", "y"},
		{utc, "GET", "/\xff\xfe\xc3", 404, 19, 999 * time.Microsecond, "x", "y"},
		{utc, "GET", "/\u2028\u2029\u00e9\U0001F600<>&'", 404, 19, 1500 * time.Microsecond, "x", "y"},
		{utc, "G\"ET", "/ok", 500, -1, 12*time.Second + 7*time.Microsecond, "\x00", "\u2028"},
	} {
		want := slogLine(t, &c)
		if got := string(c.appendJSON(nil)); got != want {
			t.Errorf("access line\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAccessLineMatchesSlog(f *testing.F) {
	f.Add("GET", "/metadata/timestamp.json", 200, int64(469), int64(123456), "127.0.0.1:1", "HTTP/1.1", int64(1764655201234567890))
	f.Add("\x00", "/\xff\u2028\"\\", 0, int64(-1), int64(0), "", "", int64(0))
	f.Fuzz(func(t *testing.T, method, path string, status int, n, dur int64, remote, proto string, unixNano int64) {
		l := requestLine{time.Unix(0, unixNano).UTC(), method, path, status, n, time.Duration(dur), remote, proto}
		if y := l.time.Year(); y < 0 || y >= 10000 {
			return // slog writes an error there; a clock never reads that
		}
		if got, want := string(l.appendJSON(nil)), slogLine(t, &l); got != want {
			t.Errorf("access line\n got %s\nwant %s", got, want)
		}
	})
}

// countingWriter records each Write.
type countingWriter struct {
	mu     sync.Mutex
	writes [][]byte
	wrote  chan struct{} // signalled after each write
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, bytes.Clone(p))
	w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *countingWriter) all() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.Join(w.writes, nil)), len(w.writes)
}

func testLine(path string) *requestLine {
	return &requestLine{time: time.Unix(1, 0).UTC(), method: "GET", path: path, status: 200, remote: "r", proto: "HTTP/1.1"}
}

// TestAccessLogWrittenTogether: waiting lines are written in one write,
// whole and in order: when close is called, after the delay, or once a
// buffer's worth waits; after close every line is written at once.
func TestAccessLogWrittenTogether(t *testing.T) {
	w := &countingWriter{wrote: make(chan struct{}, 1)}
	l := newLineLog(w, time.Hour)
	var want strings.Builder
	for i := range 100 {
		line := testLine(fmt.Sprintf("/%d", i))
		l.log(line)
		want.Write(line.appendJSON(nil))
	}
	if _, n := w.all(); n != 0 {
		t.Fatalf("%d writes before the delay or close", n)
	}
	l.close()
	if got, n := w.all(); n != 1 || got != want.String() {
		t.Fatalf("after close: %d writes of\n%s\nwant one of\n%s", n, got, want.String())
	}
	l.log(testLine("/after"))
	if got, n := w.all(); n != 2 || !strings.HasSuffix(got, `"path":"/after","status":200,"bytes":0,"duration_ms":0,"remote":"r","proto":"HTTP/1.1"}`+"\n") {
		t.Fatalf("a line after close: %d writes, log ends %q", n, got[max(0, len(got)-120):])
	}

	// A buffer's worth is written without waiting for the delay.
	w = &countingWriter{wrote: make(chan struct{}, 1)}
	l = newLineLog(w, time.Hour)
	big := testLine("/" + strings.Repeat("x", 1000))
	for waiting := 0; ; {
		l.log(big)
		waiting += len(big.appendJSON(nil))
		if _, n := w.all(); n > 0 {
			if waiting < lineBuffer {
				t.Fatalf("written with %d bytes waiting, before %d", waiting, lineBuffer)
			}
			break
		}
		if waiting > 2*lineBuffer {
			t.Fatal("nothing written with twice the buffer waiting")
		}
	}
	l.close()

	// The delay writes them without close.
	w = &countingWriter{wrote: make(chan struct{}, 1)}
	l = newLineLog(w, 10*time.Millisecond)
	l.log(testLine("/late"))
	select {
	case <-w.wrote:
	case <-time.After(10 * time.Second): // an upper bound: the delay is 10 ms
		t.Fatal("a line waited 10 s")
	}
	if got, _ := w.all(); !strings.Contains(got, `"path":"/late"`) {
		t.Fatalf("log %q", got)
	}
	l.close()
}

// TestAccessLogConcurrent: lines logged at once from many goroutines are
// each written once, whole, and each goroutine's in its order.
func TestAccessLogConcurrent(t *testing.T) {
	w := &countingWriter{wrote: make(chan struct{}, 1)}
	l := newLineLog(w, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				l.log(testLine(fmt.Sprintf("/%d/%d", g, i)))
			}
		}()
	}
	wg.Wait()
	l.close()
	got, _ := w.all()
	next := make([]int, 8)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	for _, line := range lines {
		var g, i int
		if _, err := fmt.Sscanf(line[strings.Index(line, `"path":"/`)+9:], "%d/%d", &g, &i); err != nil || !strings.HasSuffix(line, "}") {
			t.Fatalf("line %q: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if len(lines) != 8*2000 {
		t.Fatalf("%d lines, want %d", len(lines), 8*2000)
	}
}
