package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRepositoryFirst: the repository's paths skip the mux, every other
// path goes through it, and a path that leaves metadata/ or targets/
// reaches the repository (which refuses it), never another API.
func TestRepositoryFirst(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Handler", name) })
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", named("admin"))
	mux.Handle("/", named("mux-root"))
	h := repositoryFirst(named("repo"), mux)
	for path, want := range map[string]string{
		"/metadata/timestamp.json":         "repo",
		"/targets/app/1.0.0/linux-amd64/x": "repo",
		"/metadata/../api/v1/tokens":       "repo",
		"/api/v1/upload":                   "admin",
		"/metrics":                         "mux-root",
		"/metadata":                        "mux-root",
		"/":                                "mux-root",
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = path // as the server's parser leaves it: not cleaned
		h.ServeHTTP(w, r)
		if got := w.Header().Get("X-Handler"); got != want {
			t.Errorf("%s went to %q, want %q", path, got, want)
		}
	}
}
