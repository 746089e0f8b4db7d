package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sqlStore is the Store over database/sql, for both dialects.
type sqlStore struct {
	db *sql.DB
	d  dialect
	// writer is the turn of the one writer transaction when d.oneWriter;
	// queue holds the writes waiting for it (group commit).
	writer chan struct{}
	mu     sync.Mutex
	queue  []*writeReq
}

// writeReq is one write waiting for its turn: done gets its result.
type writeReq struct {
	ctx  context.Context
	fn   func(*txn) error
	done chan error
}

// maxGroup is the most writes one group commit carries.
const maxGroup = 256

func (s *sqlStore) Close() error { return s.db.Close() }

// txn is a transaction whose helpers take "?" placeholders.
type txn struct {
	*sql.Tx
	d *dialect
}

// The helpers run their statement to its end even when ctx ends: on
// SQLite an INSERT interrupted inside a transaction rolls the whole
// transaction back, and with it a group commit's other writes (see
// write). A statement is short; a transaction whose context ends is still
// rolled back by database/sql (PostgreSQL) before it commits.
func (t *txn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.ExecContext(context.WithoutCancel(ctx), t.d.rebind(q), args...)
}

func (t *txn) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.QueryRowContext(context.WithoutCancel(ctx), t.d.rebind(q), args...)
}

func (t *txn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.QueryContext(context.WithoutCancel(ctx), t.d.rebind(q), args...)
}

// write runs fn in a transaction and commits it if fn returns nil.
//
// Where the database has one writer (SQLite), the writes of this process
// take turns in Go, and those that queued while another one held the
// turn are committed together, in one transaction (group commit): each
// fn runs in a savepoint of its own, so one that fails is rolled back
// alone and gets its error, and the commit, one fsync, is shared. Without
// it every write pays its own fsync, and a fleet's reports queue behind
// one another (BENCHMARKS.md section 12). A write whose context ends
// before its turn is not run; once its group runs it, it waits for the
// group's commit (a statement interrupted inside a SQLite transaction
// would roll back the whole group).
func (s *sqlStore) write(ctx context.Context, fn func(*txn) error) error {
	if !s.d.oneWriter {
		return rethrow(s.writeTx(ctx, fn))
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, req)
	s.mu.Unlock()
	for {
		select {
		case err := <-req.done:
			return rethrow(err)
		case s.writer <- struct{}{}:
			s.mu.Lock()
			n := min(len(s.queue), maxGroup)
			group := slices.Clone(s.queue[:n])
			s.queue = s.queue[n:]
			s.mu.Unlock()
			s.commitGroup(group) // sends every one of the group its result, panics included
			<-s.writer
		case <-ctx.Done():
			s.mu.Lock()
			i := slices.Index(s.queue, req)
			if i >= 0 {
				s.queue = slices.Delete(s.queue, i, i+1)
			}
			s.mu.Unlock()
			if i >= 0 {
				return ctx.Err()
			}
			return rethrow(<-req.done) // taken by a group: its result is coming
		}
	}
}

// panicError carries a write's panic to the goroutine of the write, which
// panics with it there: a group's other writes, and the one that runs the
// group, go on.
type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprintf("panic in a write: %v", p.v) }

func rethrow(err error) error {
	if p, ok := err.(panicError); ok {
		panic(p.v)
	}
	return err
}

// call runs fn, turning a panic into a panicError.
func call(fn func(*txn) error, tx *txn) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError{v}
		}
	}()
	return fn(tx)
}

// commitGroup runs a group of writes in one transaction and sends each
// its result.
func (s *sqlStore) commitGroup(group []*writeReq) {
	if len(group) == 0 {
		return
	}
	if len(group) == 1 {
		r := group[0]
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			return
		}
		r.done <- s.writeTx(context.WithoutCancel(r.ctx), r.fn)
		return
	}
	errs := make([]error, len(group))
	failAll := func(err error) {
		for _, r := range group {
			r.done <- err
		}
	}
	err := s.writeTx(context.Background(), func(tx *txn) error {
		for i, r := range group {
			if errs[i] = r.ctx.Err(); errs[i] != nil {
				continue
			}
			ctx := context.WithoutCancel(r.ctx)
			if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			if errs[i] = call(r.fn, tx); errs[i] != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
					return fmt.Errorf("roll back to savepoint: %w (after %v)", err, errs[i])
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		failAll(err)
		return
	}
	for i, r := range group {
		r.done <- errs[i]
	}
}

// writeTx runs fn in a transaction of its own and commits it if fn
// returns nil.
func (s *sqlStore) writeTx(ctx context.Context, fn func(*txn) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := call(fn, &txn{Tx: tx, d: &s.d}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *sqlStore) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.rebind(q), args...)
}

func (s *sqlStore) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.rebind(q), args...)
}

// rebind turns the "?" placeholders of q into $1, $2... where the
// dialect numbers them. The shared SQL has no "?" inside literals.
func (d *dialect) rebind(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(q)/4)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// constraint returns ErrConflict or ErrNotFound if err is a unique or
// foreign key violation, else nil.
func (s *sqlStore) constraint(err error) error {
	if err == nil {
		return nil
	}
	return s.d.code(err)
}

// nanos and fromNanos store a time as Unix nanoseconds, 0 for none.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// limit returns the number of rows a query with limit n returns.
func limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// noRows maps sql.ErrNoRows to ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
