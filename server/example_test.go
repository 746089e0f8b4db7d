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

// A server that keeps its own CA across restarts: load it (or make it),
// listen, and only then save a new one, so a start that fails writes
// nothing.
func ExampleLoadOrCreateCA() {
	dir, _ := os.MkdirTemp("", "ferry-ca")
	defer os.RemoveAll(dir)
	certFile := filepath.Join(dir, "ca.pem")
	keyFile := server.CAKeyFile(certFile) // dir/ca.key
	for start := 1; start <= 2; start++ {
		ca, err := server.LoadOrCreateCA(certFile, keyFile)
		if err != nil {
			panic(err)
		}
		if _, err := ca.ServerConfig([]string{"127.0.0.1:8443"}); err != nil {
			panic(err)
		}
		// ... net.Listen succeeded here ...
		fmt.Printf("start %d: new CA %v\n", start, ca.New())
		if ca.New() {
			if err := ca.Save(certFile, keyFile); err != nil {
				panic(err)
			}
		}
	}
	// Output:
	// start 1: new CA true
	// start 2: new CA false
}
