package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	// DefaultMaxConns is how many connections are served at once.
	DefaultMaxConns = 1024
	// DefaultMinWriteRate is the slowest average, in bytes per second,
	// at which a response may reach its client (the default minimum
	// rate of package fetch's clients).
	DefaultMinWriteRate = 4 << 10
)

// Config configures Run. Handler and TLS are required; the zero value of
// every other field is a safe default.
type Config struct {
	Handler http.Handler
	// TLS must carry a certificate (Certificates or GetCertificate).
	// MinVersion is raised to TLS 1.2 if lower.
	TLS *tls.Config
	// Listener, if set, is served (and closed by Run); else Run listens on
	// Addr. Listening before Run lets "127.0.0.1:0" report its port.
	Listener net.Listener
	Addr     string
	// OnListen, if set, is called with the address being served, before
	// the first connection is accepted.
	OnListen func(net.Addr)
	Logger   *slog.Logger // access log and server errors; nil: slog.Default()
	// AccessLog, if set, receives the access log instead of Logger: the
	// same JSON lines slog.NewJSONHandler would write for it, made
	// without slog and written together, whole and in order, at most
	// 10 ms after the first of them (accessline.go); all are written
	// by the time Run returns. Its writes and Logger's come from
	// different goroutines: when both use one writer, it must be safe
	// for concurrent use (ferry serve puts a lock in front of it).
	AccessLog io.Writer
	// Fast, if set, answers the plain GETs and HEADs of the files it
	// holds in memory on HTTP/1.1 connections without net/http
	// (fastpath.go): the handler Repository returns, which Handler must
	// serve those paths with (as ferry serve's does).
	Fast FastFiles
	// Metrics, if set, counts every request and its bytes by face and
	// status class (an atomic add; nothing allocated). Serving them is
	// the Handler's business (Metrics.Handler).
	Metrics *Metrics

	ReadHeaderTimeout time.Duration // to read a request's headers
	ReadTimeout       time.Duration // to read a request's body, from the end of its headers
	// WriteTimeout bounds the time without progress while writing a
	// response: every write extends the deadline by this much, so a large
	// download to a live client is never cut, and a stalled one is.
	WriteTimeout time.Duration
	// MinWriteRate (bytes per second) bounds a whole response: it must be
	// written within WriteTimeout plus the time its bytes take at this
	// rate, so a client that reads a trickle (but never stalls) cannot
	// hold a connection for ever.
	MinWriteRate int64
	// MaxConns is how many connections are served at once; one more is
	// closed as soon as it is accepted.
	MaxConns        int
	IdleTimeout     time.Duration // keep-alive connections
	ShutdownTimeout time.Duration // graceful shutdown, then connections are closed
	MaxHeaderBytes  int
}

// Run serves cfg.Handler over HTTPS until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets requests in flight finish for up to
// ShutdownTimeout, then closes what is left. It returns nil after a shutdown
// caused by ctx, and the error otherwise.
func Run(ctx context.Context, cfg Config) error {
	srv, ln, lines, err := newServer(cfg)
	if err != nil {
		return err
	}
	if lines != nil {
		defer lines.close()
	}
	addr := ln.Addr().String()
	log := cfg.logger()
	cs := &conns{
		ln:     ln,
		tls:    srv.TLSConfig.Clone(), // net/http's HTTP/2 set-up writes to srv's
		files:  cfg.Fast,
		http:   newHandoff(ln.Addr()),
		errLog: srv.ErrorLog,
		access: accessRecorder{log: log, lines: lines, m: cfg.Metrics},
		dl:     deadlinesOf(cfg),
		header: srv.ReadHeaderTimeout,
		idle:   srv.IdleTimeout,
		live:   make(map[*conn]struct{}),
	}
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}
	log.Info("serving", "addr", "https://"+addr)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(cs.http) }()
	go func() { errc <- cs.serve() }()
	select {
	case err := <-errc:
		// The listener failed: stop the rest at once (shutdown closes
		// the listener and, with a context that has ended, every
		// connection).
		srv.Close()
		cs.shutdown(canceled)
		<-errc
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "addr", addr, "reason", context.Cause(ctx).Error())
	sctx, cancel := context.WithTimeout(context.Background(), durationOr(cfg.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	// Both at once: the fast path closes the listener and its idle
	// connections and waits for the rest, while net/http does the same
	// with its own (and closes what the fast path hands it from now on).
	fastErr := make(chan error, 1)
	go func() { fastErr <- cs.shutdown(sctx) }()
	err = srv.Shutdown(sctx)
	if ferr := <-fastErr; err == nil {
		err = ferr
	}
	if err != nil {
		srv.Close()
		err = fmt.Errorf("shut down %s: %w (open connections closed)", addr, err)
	}
	for range 2 {
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("serve %s: %w", addr, serr)
		}
	}
	return err
}

// canceled is a context that has ended: a shutdown that waits for nothing.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// newServer validates cfg and builds the http.Server, its listener and
// the access log writer (nil without cfg.AccessLog), which the caller
// closes once the server has stopped.
func newServer(cfg Config) (*http.Server, net.Listener, *lineLog, error) {
	var bad error
	switch {
	case cfg.Handler == nil:
		bad = errors.New("serve: no handler")
	case cfg.TLS == nil || len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil:
		bad = errors.New("serve: no TLS certificate (HTTPS only)")
	}
	if bad != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close() // Run owns a listener it is given, even when it refuses the config
		}
		return nil, nil, nil, bad
	}
	tlsCfg := cfg.TLS.Clone()
	if tlsCfg.MinVersion < tls.VersionTLS12 {
		tlsCfg.MinVersion = tls.VersionTLS12
	}
	// Run makes the handshakes (fastpath.go): it offers HTTP/2 and
	// HTTP/1.1 as net/http's ServeTLS would, and net/http's Serve sets
	// up HTTP/2 because the configuration names it.
	if len(tlsCfg.NextProtos) == 0 {
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
	}
	dl := deadlinesOf(cfg)
	log := cfg.logger()
	var lines *lineLog
	if cfg.AccessLog != nil {
		lines = newLineLog(cfg.AccessLog, lineDelay)
	}
	srv := &http.Server{
		Handler:   accessLog(log, lines, dl, cfg.Metrics, cfg.Handler),
		TLSConfig: tlsCfg,
		// ReadTimeout stays 0: net/http would set it on every request,
		// and accessLog would clear it again for a request without a
		// body; accessLog sets it for the requests that have one.
		ReadHeaderTimeout: durationOr(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		WriteTimeout:      dl.write,
		IdleTimeout:       durationOr(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if srv.MaxHeaderBytes <= 0 {
		srv.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, nil, nil, fmt.Errorf("serve: %w", err)
		}
	}
	max := cfg.MaxConns
	if max <= 0 {
		max = DefaultMaxConns
	}
	return srv, newLimitListener(ln, max, log), lines, nil
}

func deadlinesOf(cfg Config) deadlines {
	dl := deadlines{
		read:  durationOr(cfg.ReadTimeout, DefaultReadTimeout),
		write: durationOr(cfg.WriteTimeout, DefaultWriteTimeout),
		rate:  cfg.MinWriteRate,
	}
	if dl.rate <= 0 {
		dl.rate = DefaultMinWriteRate
	}
	return dl
}

func (cfg Config) logger() *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.Default()
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
