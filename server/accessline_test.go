package server

import (
	"bytes"
	"context"
	"log/slog"
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
