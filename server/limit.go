package server

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener serves at most cap(sem) connections at once: one more is
// closed as soon as it is accepted, so a flood of idle or slow
// connections cannot exhaust file descriptors and memory, and a client
// over the limit fails fast (and tries another mirror) instead of waiting
// in the kernel's backlog.
type limitListener struct {
	net.Listener
	sem     chan struct{}
	log     *slog.Logger
	lastLog atomic.Int64 // unix nanoseconds of the last "limit reached" warning
	refused atomic.Int64 // connections closed since that warning
}

func newLimitListener(ln net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, max), log: log}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
		default:
			c.Close()
			l.note()
		}
	}
}

// note logs that the limit was reached, at most once a minute, with how
// many connections were closed.
func (l *limitListener) note() {
	n := l.refused.Add(1)
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(time.Minute) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.refused.Add(-n)
	l.log.Warn("connection limit reached", "event", "server.conn_limit", "max", cap(l.sem), "closed", n)
}

// limitConn gives its slot back when it is closed (first, so that a client
// that sees the connection end can connect again at once).
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	c.release()
	return c.Conn.Close()
}
