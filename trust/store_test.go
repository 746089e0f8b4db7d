package trust_test

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/trust"
)

// foldStore is metastore.Dir's naming on a case-insensitive file system (macOS,
// Windows by default): files are found by their metastore name, folded to
// lower case.
type foldStore struct {
	mu    sync.Mutex
	files map[string][]byte
}

func newFoldStore() *foldStore { return &foldStore{files: map[string][]byte{}} }

func (s *foldStore) file(role string) (string, error) {
	name, err := metastore.FileName(role)
	return strings.ToLower(name), err
}

func (s *foldStore) Load(role string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, err := s.file(role)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, fs.ErrNotExist)
	}
	data, ok := s.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return data, nil
}

func (s *foldStore) Save(role string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, err := s.file(role)
	if err != nil {
		return err
	}
	s.files[name] = append([]byte(nil), data...)
	return nil
}

// R24 on a case-insensitive file system: delegated roles named like a
// top-level role in another case ("Timestamp") are stored in files of
// their own. Before, "Timestamp.json" replaced timestamp.json there, so the
// next start had no trusted timestamp and accepted an older one.
func TestCaseFoldingStore_R24(t *testing.T) {
	for _, role := range []string{"Timestamp", "TIMESTAMP", "Snapshot", "Root", "Targets"} {
		t.Run(role, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			e.repo.Delegate("targets", role, []string{"*"}, false)
			e.repo.AddTarget(role, "f", []byte("x"), nil)
			e.repo.BumpRoot() // so that root.json is stored too
			e.repo.Publish()
			oldTS := e.repo.Bytes("timestamp.json")
			e.repo.PublishTimestamp()
			st := newFoldStore()
			cfg := e.config()
			cfg.Store = st
			c, err := trust.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Refresh(ctx, e.repo); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Target(ctx, e.repo, "f"); err != nil {
				t.Fatal(err)
			}
			// A restart, then the attacker replays the older timestamp.
			e.repo.Serve("timestamp.json", oldTS)
			c, err = trust.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantKind(t, c.Refresh(ctx, e.repo), trust.ErrRollback)
			if len(st.files) != 6 {
				t.Fatalf("store holds %d files, want 6 (four top-level roles, 2.root and %s)", len(st.files), role)
			}
		})
	}
}
