package trust_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// memStore is an in-memory Store that can be told to fail.
type memStore struct {
	mu    sync.Mutex
	m     map[string][]byte
	fail  map[string]error
	saves int
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}, fail: map[string]error{}} }

func (s *memStore) Load(role string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.m[role]
	if !ok {
		return nil, fmt.Errorf("%s: %w", role, fs.ErrNotExist)
	}
	return append([]byte(nil), d...), nil
}

func (s *memStore) Save(role string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[role]; err != nil {
		return err
	}
	s.saves++
	s.m[role] = append([]byte(nil), data...)
	return nil
}

func (s *memStore) snapshot() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// env is a repository, a store, a clock and a log.
type env struct {
	t     testing.TB
	repo  *reposim.Repo
	store *memStore
	now   time.Time
	logs  bytes.Buffer // every event, as event.Slog writes it (JSON)
	rec   event.Recorder
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return &env{t: t, repo: reposim.New(t0), store: newMemStore(), now: t0.Add(time.Hour)}
}

func (e *env) client() *trust.Client {
	e.t.Helper()
	c, err := trust.New(e.config())
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return c
}

func (e *env) config() trust.Config {
	return trust.Config{
		Root: e.repo.RootBytes(1), Store: e.store,
		Now:    func() time.Time { return e.now },
		Events: event.Tee(&e.rec, event.Slog(slog.New(slog.NewJSONHandler(&e.logs, nil)))),
	}
}

// refreshed returns a client that completed one refresh.
func (e *env) refreshed() *trust.Client {
	e.t.Helper()
	c := e.client()
	if err := c.Refresh(context.Background(), e.repo); err != nil {
		e.t.Fatalf("first refresh: %v", err)
	}
	return c
}

func (e *env) refresh(c *trust.Client) error {
	return c.Refresh(context.Background(), e.repo)
}

// rejects counts rejection events.
func (e *env) rejects() int { return e.count(event.MetadataRejected) }

// count counts the events of kind k.
func (e *env) count(k event.Kind) int {
	n := 0
	for _, got := range e.rec.Kinds() {
		if got == k {
			n++
		}
	}
	return n
}

// wantKind fails unless err is a logged SecurityError of the given kind.
func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", kind)
	}
	var se *trust.SecurityError
	if !errors.As(err, &se) || !errors.Is(err, kind) {
		t.Fatalf("got %v, want a SecurityError of kind %v", err, kind)
	}
}

// storeUnchanged fails if the store differs from before.
func storeUnchanged(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	for k, v := range after {
		if !bytes.Equal(before[k], v) {
			t.Errorf("store %s changed after a rejected refresh", k)
		}
	}
}

// editJSON decodes data, lets f change it, and re-encodes it.
func editJSON(t testing.TB, data []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sigs(m map[string]any) []any { return m["signatures"].([]any) }

func signed(m map[string]any) map[string]any { return m["signed"].(map[string]any) }

// keyID is k's TUF key ID.
func keyID(t *testing.T, k *metadata.Key) string {
	t.Helper()
	data, err := cjson.EncodeCanonical(k)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
