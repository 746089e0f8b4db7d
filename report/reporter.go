package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
)

// Dropped is the kind of the event the Reporter writes when the queue's
// bound dropped lines that were never delivered: Evidence["lines"] is how
// many, Evidence["total"] how many ever.
const Dropped event.Kind = "report.dropped"

// Files in the state directory.
const (
	AuditFile = "audit.log"    // the installation's audit log
	QueueDir  = "report-queue" // the queue of lines not yet delivered
)

// Options configure a Reporter. StateDir is required.
type Options struct {
	StateDir string
	Queue    QueueOptions
	Audit    audit.Options // OnAppend is the Reporter's own
	// Batch is the most lines one request carries (0: 500); BatchBytes
	// about the most bytes (0: 512 KiB).
	Batch      int
	BatchBytes int
	// Linger is how long the uploader waits after an event for more to
	// send with it (0: none).
	Linger time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed send, which
	// doubles from one to the other (0: 1 s and 5 min).
	MinBackoff, MaxBackoff time.Duration
	// Apps, if set, says what the installation runs; it is sent with each batch.
	Apps   func() []App
	Logger *slog.Logger // delivery errors (never a secret); nil: discarded
	Now    func() time.Time
}

// Reporter is the agent's side of reporting: an event.Observer that
// appends each event to the audit log (STATEDIR/audit.log) and, once the
// line is durable, to the queue (STATEDIR/report-queue); and an uploader
// (Run) that sends the queue to the server in order, removing lines only
// once the server acknowledged them. It is safe for concurrent use.
type Reporter struct {
	opts   Options
	cred   Credentials
	client *Client
	log    *audit.Log
	q      *Queue
	wake   chan struct{}

	pendingDrop atomic.Int64
	mu          sync.Mutex
	qerr        error // the first queue error, for Err
}

// Open loads the credentials of STATEDIR (ErrNotEnrolled without), opens
// the queue, queues again any line of the audit log the queue has not
// had (the append a crash cut between the two files), and opens the log.
func Open(opts Options) (*Reporter, error) {
	cred, err := LoadCredentials(opts.StateDir)
	if err != nil {
		return nil, err
	}
	def(&opts)
	var ca []byte
	if cred.CA != "" {
		ca = []byte(cred.CA)
	}
	c, err := NewClient(cred.Server, ca)
	if err != nil {
		return nil, err
	}
	q, err := OpenQueue(filepath.Join(opts.StateDir, QueueDir), opts.Queue)
	if err != nil {
		return nil, err
	}
	r := &Reporter{opts: opts, cred: cred, client: c, q: q, wake: make(chan struct{}, 1)}
	path := filepath.Join(opts.StateDir, AuditFile)
	if err := r.reconcile(path); err != nil {
		q.Close()
		return nil, err
	}
	ao := opts.Audit
	ao.OnAppend = r.queue
	if r.log, err = audit.Open(path, ao); err != nil {
		q.Close()
		return nil, fmt.Errorf("report: %w", err)
	}
	return r, nil
}

func def(o *Options) {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 512 << 10
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Apps == nil {
		o.Apps = func() []App { return nil }
	}
}

// reconcile queues the lines of the audit log (and its last rotated file)
// above the queue's LastSeq. A torn last line stops the read: audit.Open
// cuts it off next.
func (r *Reporter) reconcile(path string) error {
	for _, p := range []string{path + ".1", path} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		last := r.q.LastSeq()
		_, err = audit.Read(f, audit.State{}, func(rec audit.Record) error {
			if rec.Seq <= last {
				return nil
			}
			line, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			_, err = r.q.Append(rec.Seq, line)
			return err
		})
		f.Close()
		var ae *audit.Error
		if err != nil && !errors.As(err, &ae) {
			return fmt.Errorf("report: requeue from %s: %w", p, err)
		}
	}
	return nil
}

// queue is the audit log's OnAppend: the line is durable in the log.
func (r *Reporter) queue(line []byte, st audit.State) {
	fail("audit.appended")
	n, err := r.q.Append(st.Seq, line)
	if err != nil {
		r.mu.Lock()
		if r.qerr == nil {
			r.qerr = err
		}
		r.mu.Unlock()
		r.opts.Logger.Warn("report: queue", "err", err.Error())
	}
	r.pendingDrop.Add(int64(n))
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Observe writes e to the audit log, which queues it; a drop the bound
// made is then written as a Dropped event.
func (r *Reporter) Observe(e event.Event) {
	r.log.Observe(e)
	if n := r.pendingDrop.Swap(0); n > 0 {
		total := r.q.Stats().Dropped
		r.log.Observe(event.Event{Time: r.opts.Now(), Kind: Dropped,
			Cause:    fmt.Sprintf("the report queue was full: %d event(s) never delivered were dropped, oldest first", n),
			Evidence: map[string]string{"lines": strconv.FormatInt(n, 10), "total": strconv.Itoa(total)}})
	}
}

// Err is the first error of the audit log or the queue, nil if none.
func (r *Reporter) Err() error {
	if err := r.log.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.qerr
}

// InstallID is the installation the credentials report for.
func (r *Reporter) InstallID() string { return r.cred.InstallID }

// Stats are the queue's.
func (r *Reporter) Stats() Stats { return r.q.Stats() }

// State is the end of the audit log's chain.
func (r *Reporter) State() audit.State { return r.log.State() }

// Close closes the audit log and the queue.
func (r *Reporter) Close() error {
	err := r.log.Close()
	r.q.Close()
	return err
}

// Run sends the queue to the server until ctx ends: at once when events
// arrive (after Linger), again after a failure with a backoff that
// doubles from MinBackoff to MaxBackoff (or the server's Retry-After). It
// returns nil when ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		err := r.Flush(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wake <-chan struct{}
		var wait time.Duration
		if err != nil {
			backoff = min(max(2*backoff, r.opts.MinBackoff), r.opts.MaxBackoff)
			wait = backoff
			var ae *APIError
			if errors.As(err, &ae) && ae.RetryAfter > wait {
				wait = min(ae.RetryAfter, r.opts.MaxBackoff)
			}
			r.opts.Logger.Warn("report: delivery failed", "err", err.Error(), "retry_in", wait.String(), "depth", r.q.Stats().Depth)
		} else {
			backoff, wait, wake = 0, r.opts.MaxBackoff, r.wake
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-wake:
			t.Stop()
			if r.opts.Linger > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(r.opts.Linger):
				}
			}
		}
	}
}

// Flush sends batches until the queue is empty, and returns the first
// error (the lines stay queued; the queue records it for ferry agent
// status until a delivery succeeds).
func (r *Reporter) Flush(ctx context.Context) error {
	for {
		items, err := r.q.Peek(r.opts.Batch, r.opts.BatchBytes)
		if err != nil || len(items) == 0 {
			return err
		}
		if _, err := r.client.Send(ctx, r.cred, items, r.opts.Apps()); err != nil {
			if ctx.Err() == nil { // a stop is no delivery error
				if ferr := r.q.Failed(err, r.opts.Now()); ferr != nil {
					r.opts.Logger.Warn("report: queue", "err", ferr.Error())
				}
			}
			return err
		}
		fail("send.stored")
		if err := r.q.Ack(items[len(items)-1].State(), r.opts.Now()); err != nil {
			return err
		}
	}
}
