package harness

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestMain turns the test binary into a benchmark child when Run starts it.
func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

var sink []byte

func childMain() int {
	s := Start("alloc")
	sink = make([]byte, 32<<20)
	for i := 0; i < len(sink); i += 4096 { // one write per page makes it resident
		sink[i] = 1
	}
	if err := Report(s.Stop(nil)); err != nil {
		return 1
	}
	_ = Report(Start("fail").Stop(errors.New("boom")))
	return 0
}

func TestRunChild(t *testing.T) {
	rs, err := Run(context.Background(), "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("got %d results, want 2: %+v", len(rs), rs)
	}
	if rs[1].Err != "boom" {
		t.Errorf("fail step: %+v", rs[1])
	}
	a := rs[0]
	if a.Step != "alloc" || a.AllocBytes < 32<<20 || a.Allocs == 0 || a.Nanos <= 0 {
		t.Errorf("alloc step: %+v", a)
	}
	if runtime.GOOS != "linux" {
		return // peak RSS comes from /proc and rusage, read on Linux only
	}
	if a.PeakRSS < 32<<20 || a.PeakRSS > 512<<20 {
		t.Errorf("alloc step peak RSS %d, want about 32 MiB", a.PeakRSS)
	}
	if a.Maxrss < a.PeakRSS/2 {
		t.Errorf("Maxrss %d not recorded", a.Maxrss)
	}
}

func TestServeCounts(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	body := strings.Repeat("x", 1000)
	s, err := Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}), ca)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool, err := CAPool(ca)
	if err != nil {
		t.Fatal(err)
	}
	hc := HTTPClient(pool)
	for range 3 {
		resp, err := hc.Get(s.URL + "/a")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := hc.Get(s.URL + "/missing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c, err := FetchCounts(context.Background(), hc, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bytes < 3000 || c.Bytes > 3100 || c.Requests != 4 || c.Files != 3 {
		t.Errorf("counts %+v, want 3000 bytes and a 404 body in 4 requests, 3 files", c)
	}
	if _, err := HTTPClient(nil).Get(s.URL + "/a"); err == nil {
		t.Error("a client without the CA trusted the server")
	}
}
