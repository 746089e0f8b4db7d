package server_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ferry-updates/ferry/server"
)

func ExampleRepository() {
	public, _ := os.MkdirTemp("", "ferry-public")
	defer os.RemoveAll(public)
	os.MkdirAll(filepath.Join(public, "metadata"), 0o755)
	os.WriteFile(filepath.Join(public, "metadata", "timestamp.json"), []byte(`{"signed":{}}`), 0o644)
	os.WriteFile(filepath.Join(public, "metadata", "1.root.json"), []byte(`{"signed":{}}`), 0o644)

	h, err := server.Repository(public)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewTLSServer(h) // ferry serve uses server.Run
	defer srv.Close()
	for _, p := range []string{"/metadata/timestamp.json", "/metadata/1.root.json", "/metadata/../../etc/passwd"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(p, resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	// Output:
	// /metadata/timestamp.json 200 no-cache
	// /metadata/1.root.json 200 public, max-age=31536000, immutable
	// /metadata/../../etc/passwd 404
}
