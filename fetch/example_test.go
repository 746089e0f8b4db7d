package fetch_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ferry-updates/ferry/fetch"
)

func Example() {
	artifact := []byte("hello, world\n")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(artifact)
	}))
	defer srv.Close()

	// Trust the test server's certificate; in production RootCAs is nil
	// (system roots) or a pinned CA.
	f, err := fetch.New(fetch.Options{HTTPClient: srv.Client()})
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "fetch-example")
	defer os.RemoveAll(dir)

	sum := sha256.Sum256(artifact)
	want := fetch.Want{Length: int64(len(artifact)), Hashes: map[string][]byte{"sha256": sum[:]}}
	err = f.File(context.Background(), srv.URL+"/hello", filepath.Join(dir, "hello"), want, nil)
	fmt.Println("download:", err)

	bad := sha256.Sum256([]byte("something else"))
	want.Hashes["sha256"] = bad[:]
	err = f.File(context.Background(), srv.URL+"/hello", filepath.Join(dir, "hello2"), want, nil)
	fmt.Println("tampered refused:", errors.Is(err, fetch.ErrMismatch))

	_, err = f.Bytes(context.Background(), "http://updates.example.com/metadata/timestamp.json", 1<<20)
	fmt.Println("plain http refused:", errors.Is(err, fetch.ErrRefused))
	// Output:
	// download: <nil>
	// tampered refused: true
	// plain http refused: true
}
