package trust_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/internal/metastore"
	"github.com/ferry-updates/ferry/internal/reposim"
	"github.com/ferry-updates/ferry/trust"
)

// FuzzRoleNamePath_R24: every role name maps to one mirror file name that
// maps back to it, and to one store file name that is safe on every file
// system: inside the directory, not hidden, no trailing dot or space, not a
// Windows device name, and never the file of a top-level role or of a
// variant of the name in another case, even where case is folded.
func FuzzRoleNamePath_R24(f *testing.F) {
	for _, s := range []string{"targets", "../x", "/abs", `C:\x`, "%2e%2e", "a\x00b", "?#", "..", ".", "a/b", "ü", "%", "CON",
		"Timestamp", "ROOT", "Snapshot.", "targets ", "nul.json", "com1", "Lpt9.txt", "2.root", "progra~1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, role string) {
		name, err := trust.RoleFileName(role)
		if err != nil {
			if role != "" {
				t.Fatalf("%q: %v", role, err)
			}
			return
		}
		if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.ContainsAny(name, "/\\\x00") {
			t.Fatalf("%q -> %q is not one local file name", role, name)
		}
		back, err := trust.RoleFromFileName(name)
		if err != nil || back != role {
			t.Fatalf("%q -> %q -> %q, %v", role, name, back, err)
		}
		file, err := metastore.FileName(role)
		if err != nil {
			if len(role) < 50 {
				t.Fatalf("store name of %q: %v", role, err)
			}
			return
		}
		checkStoreName(t, role, file)
		others := []string{strings.ToUpper(role), strings.ToLower(role), role + ".", role + " ", strings.TrimRight(role, ". ")}
		others = append(others, "root", "timestamp", "snapshot", "targets", "1.root", "2.root")
		for _, o := range others {
			if of, err := metastore.FileName(o); err == nil && o != role && strings.EqualFold(of, file) {
				t.Fatalf("%q and %q share the store file %q where case is folded", role, o, file)
			}
		}
	})
}

// checkStoreName fails unless file is one local file name that no file
// system reads as another (Windows device names are listed here, from
// Microsoft's naming rules, independently of the encoder).
func checkStoreName(t *testing.T, role, file string) {
	t.Helper()
	if !filepath.IsLocal(file) || filepath.Base(file) != file || strings.ContainsAny(file, "/\\:\x00") {
		t.Fatalf("%q -> %q is not one local file name", role, file)
	}
	if strings.HasPrefix(file, ".") || strings.HasSuffix(file, ".") || strings.HasSuffix(file, " ") || !strings.HasSuffix(file, ".json") {
		t.Fatalf("%q -> %q is hidden, has a trailing dot or space, or lacks .json", role, file)
	}
	stem, _, _ := strings.Cut(strings.ToLower(file), ".")
	for _, dev := range strings.Fields("con prn aux nul com0 com1 com2 com3 com4 com5 com6 com7 com8 com9 lpt0 lpt1 lpt2 lpt3 lpt4 lpt5 lpt6 lpt7 lpt8 lpt9") {
		if stem == dev {
			t.Fatalf("%q -> %q is a Windows device name", role, file)
		}
	}
}

// FuzzMetadataDecode_R25: arbitrary bytes as root, timestamp, snapshot or
// targets: an error (or the genuine file), never a panic, no state change.
func FuzzMetadataDecode_R25(f *testing.F) {
	e := newEnv(f)
	e.repo = reposim.NewDeterministic(t0, 25)
	e.repo.MetaHashes = false
	e.repo.Delegate("targets", "a", []string{"a/*"}, false)
	e.repo.AddTarget("a", "a/x", []byte("x"), map[string]any{"app": "a"})
	e.repo.Publish()
	e.refreshed()
	base := e.store.snapshot()
	e.repo.BumpRoot()
	e.repo.MarkDirty("targets")
	e.repo.MarkDirty("a")
	e.repo.Publish()
	names := []string{"2.root.json", "timestamp.json", "3.snapshot.json", "3.targets.json", "2.a.json"}
	roles := []string{"root", "timestamp", "snapshot", "targets", "a"}
	for i, n := range names {
		f.Add(uint8(i), e.repo.Bytes(n))
	}
	f.Add(uint8(1), []byte(`{"signed":{"_type":"timestamp","version":99999999999999999999},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := names[int(which)%len(names)]
		genuine := bytes.Equal(data, e.repo.Bytes(name))
		src := &override{Repo: e.repo, name: name, data: data}
		st := newMemStore()
		st.m = mapsClone(base)
		cfg := e.config()
		cfg.Store = st
		c, err := trust.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Refresh(context.Background(), src)
		if err == nil {
			_, err = c.Target(context.Background(), src, "a/x")
		}
		if err == nil && !genuine {
			t.Fatalf("%s: accepted %q", name, data)
		}
		role := roles[int(which)%len(names)]
		if v := st.m[role]; !genuine && bytes.Equal(v, data) && !bytes.Equal(v, base[role]) {
			t.Fatalf("fuzzed bytes stored as %s", role)
		}
		if _, err := trust.New(trust.Config{Root: data, Store: newMemStore()}); err == nil &&
			!bytes.Equal(data, e.repo.Bytes("2.root.json")) && !bytes.Equal(data, e.repo.RootBytes(1)) {
			t.Fatalf("accepted %q as a trusted root", data)
		}
	})
}

// override serves data for one name and the repository for the rest,
// without changing the shared repository (fuzz workers run in parallel).
type override struct {
	*reposim.Repo
	name string
	data []byte
}

func (o *override) FetchMetadata(ctx context.Context, name string, maxLen int64) ([]byte, error) {
	if name == o.name {
		if int64(len(o.data)) > maxLen {
			return nil, fmt.Errorf("too long")
		}
		return o.data, nil
	}
	return o.Repo.FetchMetadata(ctx, name, maxLen)
}
