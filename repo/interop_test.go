package repo

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// TestGoTUFUpdaterInterop serves the public directory over HTTPS on
// loopback and lets go-tuf's stock updater refresh, find targets through
// the application delegations, and download them by their
// consistent-snapshot names.
func TestGoTUFUpdaterInterop(t *testing.T) {
	r := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2}, &testClock{t: time.Now()})
	r.now = time.Now // the stock updater judges expiry by the real clock
	content := map[string]string{
		"hello/1.0.0/linux-amd64/hello":       "hello one",
		"hello/1.1.0/linux-amd64/hello":       "hello two",
		"world/0.1.0/windows-amd64/world.zip": "PK world",
	}
	rels := map[string]Release{
		"hello/1.0.0/linux-amd64/hello":       hello("1.0.0"),
		"hello/1.1.0/linux-amd64/hello":       hello("1.1.0"),
		"world/0.1.0/windows-amd64/world.zip": {App: "world", Version: "0.1.0", Platform: "windows/amd64"},
	}
	for p, c := range content {
		if err := r.Publish(ctx, rels[p], []string{writeFile(t, filepath.Base(p), c)}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(filepath.Join(r.dir, "public"))))
	defer srv.Close()

	up := newUpdater(t, r.dir, srv)
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh: %v", err)
	}
	for p, c := range content {
		ti, err := up.GetTargetInfo(p)
		if err != nil {
			t.Fatalf("GetTargetInfo(%s): %v", p, err)
		}
		dst := filepath.Join(t.TempDir(), "out")
		if _, _, err := up.DownloadTarget(ti, dst, ""); err != nil {
			t.Fatalf("DownloadTarget(%s): %v", p, err)
		}
		got, _ := os.ReadFile(dst)
		if string(got) != c {
			t.Errorf("%s: got %q, want %q", p, got, c)
		}
	}
	if _, err := up.GetTargetInfo("hello/9.9.9/linux-amd64/hello"); err == nil {
		t.Error("unpublished target found")
	}

	// A later publish and a forced refresh are picked up by a new cycle.
	if err := r.Publish(ctx, hello("1.2.0"), []string{writeFile(t, "hello", "hello three")}); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx, true); err != nil {
		t.Fatal(err)
	}
	up2 := newUpdater(t, r.dir, srv)
	if err := up2.Refresh(); err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	if _, err := up2.GetTargetInfo("hello/1.2.0/linux-amd64/hello"); err != nil {
		t.Fatalf("new release not found: %v", err)
	}
}

func newUpdater(t *testing.T, dir string, srv *httptest.Server) *updater.Updater {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/metadata/", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = srv.URL + "/targets/"
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = t.TempDir()
	f := fetcher.NewDefaultFetcher()
	f.SetHTTPClient(srv.Client()) // trusts only the test server's certificate
	cfg.Fetcher = f
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return up
}
