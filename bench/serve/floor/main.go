// Command floor is the floor under ferry serve in bench/serve: Go's
// net/http and crypto/tls answering every request with one file's bytes
// held in memory (read once at start), with no access log, no file check
// and no routing. What ferry serve costs above it is ferry's; what it
// costs above nginx is net/http's and crypto/tls's.
//
//	go run ./bench/serve/floor -file F -cert cert.pem -key key.pem -addr-file url.txt
//
// It listens on 127.0.0.1 only and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/ferry-updates/ferry/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run() error {
	file := flag.String("file", "", "the file served for every path")
	cert := flag.String("cert", "", "PEM certificate")
	key := flag.String("key", "", "PEM private key")
	addrFile := flag.String("addr-file", "", "write https://ADDR/ here once listening")
	flag.Parse()
	body, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	tlsCfg, err := server.LoadKeyPair(*cert, *key)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	length := strconv.Itoa(len(body))
	srv := &http.Server{TLSConfig: tlsCfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		w.Write(body)
	})}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte("https://"+ln.Addr().String()+"/\n"), 0o644); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
