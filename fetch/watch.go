package fetch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// watch enforces the overall deadline and the minimum transfer rate of one
// request. It cancels ctx with an ErrTimeout or ErrTooSlow cause; a server
// that accepts the connection and never answers fails the rate check after
// the first window, since no byte arrives.
type watch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	n      atomic.Int64 // body bytes received
	once   sync.Once
	done   chan struct{}
}

func (f *Fetcher) startWatch(parent context.Context, timeout time.Duration) *watch {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watch{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go w.run(timeout, f.opts.MinRate, f.opts.RateWindow)
	return w
}

// maxDeadline bounds a File request's deadline (the minimum rate still
// applies throughout).
const maxDeadline = 30 * 24 * time.Hour

// fileTimeout is the deadline of a File request for n more bytes:
// Options.Timeout plus the time n bytes take at MinRate. The minimum rate
// is the defence against slow retrieval; the deadline is a backstop that a
// transfer at or above the minimum rate always meets.
func (f *Fetcher) fileTimeout(n int64) time.Duration {
	if f.opts.Timeout >= maxDeadline {
		return f.opts.Timeout
	}
	secs := n / f.opts.MinRate
	if n%f.opts.MinRate != 0 {
		secs++
	}
	if secs >= int64((maxDeadline-f.opts.Timeout)/time.Second) {
		return maxDeadline
	}
	return f.opts.Timeout + time.Duration(secs)*time.Second
}

func (w *watch) run(timeout time.Duration, minRate int64, window time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(window)
	defer tick.Stop()
	// The minimum over one window, rounded up so a positive rate never
	// becomes zero for a short window.
	need := (minRate*int64(window) + int64(time.Second) - 1) / int64(time.Second)
	var last int64
	for {
		select {
		case <-w.done:
			return
		case <-w.ctx.Done():
			return
		case <-deadline.C:
			w.cancel(fmt.Errorf("%w: deadline of %v exceeded after %d bytes", ErrTimeout, timeout, w.n.Load()))
			return
		case <-tick.C:
			cur := w.n.Load()
			if got := cur - last; got < need {
				w.cancel(fmt.Errorf("%w: %d bytes in the last %v, below the minimum of %d bytes/s (%d bytes in total)",
					ErrTooSlow, got, window, minRate, cur))
				return
			}
			last = cur
		}
	}
}

// add records n bytes received.
func (w *watch) add(n int) { w.n.Add(int64(n)) }

// cause returns the watchdog's reason when it (or the caller's context)
// ended the request, else err.
func (w *watch) cause(err error) error {
	if w.ctx.Err() != nil {
		if c := context.Cause(w.ctx); c != nil {
			return c
		}
	}
	return err
}

// stop ends the watch and releases its context. Call cause before stop.
func (w *watch) stop() {
	w.once.Do(func() {
		close(w.done)
		w.cancel(context.Canceled)
	})
}
