package testrepo

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

func TestSpecTargets(t *testing.T) {
	s := Spec{Targets: 250}
	ts := s.List()
	if len(ts) != 250 || s.Apps() != 3 {
		t.Fatalf("%d targets in %d apps, want 250 in 3", len(ts), s.Apps())
	}
	seen := map[string]bool{}
	for _, tg := range ts {
		if seen[tg.Path] {
			t.Fatalf("duplicate path %s", tg.Path)
		}
		seen[tg.Path] = true
		if strings.Count(tg.Path, "/") != 3 {
			t.Errorf("path %s is not APP/VERSION/OS-ARCH/FILE", tg.Path)
		}
	}
	app, p := s.Lookup()
	if app != "app00001" || !seen[p] || !strings.HasPrefix(p, app+"/") {
		t.Errorf("Lookup = %s, %s", app, p)
	}
}

// TestGoTUFReadsLayouts checks that go-tuf's stock updater accepts both
// generated layouts over HTTPS and finds the looked-up target, and that it
// refuses a target that no role lists.
func TestGoTUFReadsLayouts(t *testing.T) {
	s := Spec{Targets: 120, PerApp: 40}
	for name, gen := range map[string]func(string, Spec) (*Repo, error){"delegated": Delegated, "flat": Flat} {
		t.Run(name, func(t *testing.T) {
			r, err := gen(t.TempDir(), s)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewTLSServer(http.FileServer(http.Dir(r.Dir)))
			defer srv.Close()
			cfg, err := config.New(srv.URL+"/metadata/", r.Root)
			if err != nil {
				t.Fatal(err)
			}
			cfg.LocalMetadataDir = filepath.Join(t.TempDir(), "md")
			cfg.LocalTargetsDir = filepath.Join(t.TempDir(), "tg")
			if err := cfg.SetDefaultFetcherHTTPClient(srv.Client()); err != nil {
				t.Fatal(err)
			}
			up, err := updater.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := up.Refresh(); err != nil {
				t.Fatal(err)
			}
			_, p := s.Lookup()
			tf, err := up.GetTargetInfo(p)
			if err != nil {
				t.Fatal(err)
			}
			if tf.Path != p || tf.Length < 1<<20 {
				t.Errorf("target %+v", tf)
			}
			if _, err := up.GetTargetInfo("app00000/9.9.9/linux-amd64/app00000"); err == nil {
				t.Error("found a target nobody signed")
			}
		})
	}
}
