// Command profile serves a repository's public directory the way ferry
// serve does (server.Repository behind a mux with /api/v1/, server.Run, the
// access log as JSON lines through slog) in this process, and writes a CPU
// profile of it while a load generator runs. bench/serve/run.sh starts it
// with PROFILE=1; it listens on 127.0.0.1 only.
//
//	go run ./bench/serve/profile -public DIR/public -cert cert.pem -key key.pem \
//	    -addr 127.0.0.1:PORT -cpuprofile cpu.out -log access.log -seconds 10
//
// It starts profiling at once, stops after -seconds, then shuts down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run() error {
	public := flag.String("public", "", "the repository's public directory")
	cert := flag.String("cert", "", "PEM certificate")
	key := flag.String("key", "", "PEM private key")
	addr := flag.String("addr", "127.0.0.1:0", "address (127.0.0.1 only)")
	prof := flag.String("cpuprofile", "cpu.out", "CPU profile to write")
	logFile := flag.String("log", os.DevNull, "access log file")
	secs := flag.Int("seconds", 10, "how long to profile")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.0.0.1:") {
		return errors.New("-addr must be on 127.0.0.1")
	}
	tlsCfg, err := server.LoadKeyPair(*cert, *key)
	if err != nil {
		return err
	}
	repoH, err := server.Repository(*public)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.NotFoundHandler()) // ferry serve's admin API is here
	mux.Handle("/", repoH)
	logw, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logw.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	pf, err := os.Create(*prof)
	if err != nil {
		return err
	}
	defer pf.Close()
	if err := pprof.StartCPUProfile(pf); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*secs)*time.Second)
	defer cancel()
	fmt.Println("serving https://" + ln.Addr().String())
	err = server.Run(ctx, server.Config{
		Handler: mux, TLS: tlsCfg, Listener: ln,
		Logger: slog.New(slog.NewJSONHandler(logw, nil)),
	})
	pprof.StopCPUProfile()
	return err
}
