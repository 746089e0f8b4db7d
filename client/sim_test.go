package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/rollout"
)

// repoSim is a repository built by the test with internal/reposim, so that it
// can sign what the publisher would not (a rollout role signing a release
// path, a mixed manifest), served over TLS on 127.0.0.1 with consistent
// snapshots and target files, counting every request by URL path.
type repoSim struct {
	t   *testing.T
	r   *reposim.Repo
	srv *httptest.Server

	mu       sync.Mutex
	files    map[string][]byte // URL path under /targets/ -> bytes
	requests map[string]int    // URL path -> requests
}

// newRepoSim delegates APP/*/*/* to a role of each of apps, and _rollout/* to
// the rollout role, and publishes.
func newRepoSim(t *testing.T, apps ...string) *repoSim {
	t.Helper()
	s := &repoSim{t: t, r: reposim.New(time.Now()), files: map[string][]byte{}, requests: map[string]int{}}
	for _, app := range apps {
		s.r.Delegate("targets", app, []string{app + "/*/*/*"}, true)
	}
	s.r.Delegate("targets", rollout.RoleName, []string{rollout.PathPattern}, true)
	s.r.Publish()
	meta := s.r.Handler()
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		s.requests[req.URL.EscapedPath()]++
		data, ok := s.files[req.URL.Path]
		s.mu.Unlock()
		switch {
		case strings.HasPrefix(req.URL.Path, "/metadata/"):
			meta.ServeHTTP(w, req)
		case ok:
			w.Write(data)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// add signs the files of one release in app's role, each with the
// release manifest (unless noManifest), without publishing.
func (s *repoSim) add(app, version, platform string, files map[string][]byte, noManifest bool) {
	manifest := map[string]string{}
	for name, b := range files {
		sum := sha256.Sum256(b)
		manifest[name] = hex.EncodeToString(sum[:])
	}
	for name, b := range files {
		ferry := map[string]any{"app": app, "version": version, "platform": platform, "kind": "binary"}
		if !noManifest {
			ferry["files"] = maps.Clone(manifest)
		}
		s.addFile(app, app+"/"+version+"/"+strings.Replace(platform, "/", "-", 1)+"/"+name, b, map[string]any{"ferry": ferry})
	}
}

// addFile signs one target in role and serves its bytes.
func (s *repoSim) addFile(role, p string, b []byte, custom map[string]any) {
	s.r.AddTarget(role, p, b, custom)
	sum := sha256.Sum256(b)
	dir, file := path.Split(p)
	s.mu.Lock()
	s.files["/targets/"+dir+hex.EncodeToString(sum[:])+"."+file] = b
	s.mu.Unlock()
}

// publish is add, then Publish.
func (s *repoSim) publish(app, version string, content string) {
	s.add(app, version, "linux/amd64", map[string][]byte{app: []byte(content)}, false)
	s.r.Publish()
}

// setDoc signs d as the rollout role's decisions for d.App, and publishes.
func (s *repoSim) setDoc(d *rollout.Doc) {
	s.t.Helper()
	b, err := d.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	s.signRaw(rollout.RoleName, rollout.DocPath(d.App), b)
}

// setMin signs app's minimum safe version in app's own role, and publishes.
func (s *repoSim) setMin(app, v string) {
	s.t.Helper()
	b, err := rollout.Policy{App: app, MinVersion: v}.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	s.signRaw(app, rollout.PolicyPath(app), b)
}

// signRaw signs target p in role with custom metadata exactly b (also the
// target's bytes), and publishes.
func (s *repoSim) signRaw(role, p string, b []byte) {
	tf := s.r.AddTarget(role, p, b, nil)
	raw := json.RawMessage(b)
	tf.Custom = &raw
	s.r.Publish()
}

// reset zeroes the request counts.
func (s *repoSim) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = map[string]int{}
}

// log returns a copy of the request counts.
func (s *repoSim) log() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

// repo returns a Repository of s with a fresh state directory; its
// events go to rec.
func (s *repoSim) repo(t *testing.T, rec *event.Recorder) *client.Repository {
	t.Helper()
	if rec == nil {
		rec = &event.Recorder{}
	}
	pool := x509Pool(nil)
	pool.AddCert(s.srv.Certificate())
	r, err := client.NewRepository(client.RepositoryConfig{
		URLs: []string{s.srv.URL}, TrustedRoot: s.r.RootBytes(1),
		StateDir: filepath.Join(t.TempDir(), "state"), RootCAs: pool, Events: rec,
	})
	if err != nil {
		t.Fatalf("NewRepository: %v", err)
	}
	return r
}

// doc is a decision document for app.
func doc(app string, entries map[string]rollout.Entry) *rollout.Doc {
	return &rollout.Doc{App: app, Releases: entries}
}

// entry is an active decision in channel stable at bp basis points.
func entry(bp int, state rollout.State) rollout.Entry {
	return rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: bp, State: state, Salt: "0123456789abcdef0123456789abcdef"}
}

// hello is the App hello on linux/amd64 at installed with install ID id.
func hello(installed, id string) client.App {
	return client.App{Name: "hello", Platform: "linux/amd64", Installed: installed, InstallID: id}
}

// offered returns the version Check offers app ("" for none), failing
// on an error.
func offered(t *testing.T, r *client.Repository, app client.App) string {
	t.Helper()
	o, err := r.Check(context.Background(), app)
	if err != nil {
		t.Fatalf("check %s at %q: %v", app.Name, app.Installed, err)
	}
	if o.Release == nil {
		return ""
	}
	if o.Release.Version != o.Choice.Version {
		t.Fatalf("offer %v disagrees with its choice %+v", o.Release, o.Choice)
	}
	return o.Release.Version
}

// count returns how many events of kind k rec holds.
func count(rec *event.Recorder, k event.Kind) int {
	n := 0
	for _, got := range rec.Kinds() {
		if got == k {
			n++
		}
	}
	return n
}

// fakeInstaller records what it is asked to do, installing nothing.
type fakeInstaller struct {
	mu        sync.Mutex
	installed string
	applied   []install.Artifact
}

func (f *fakeInstaller) State(context.Context) (install.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.installed == "" {
		return install.State{}, nil
	}
	return install.State{Installed: &install.Installed{Version: f.installed}}, nil
}

func (f *fakeInstaller) Apply(_ context.Context, a install.Artifact) (install.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, a)
	f.installed = a.Version
	return install.Result{App: a.App, Version: a.Version, Path: a.File}, nil
}
