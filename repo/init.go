package repo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/rollout"
)

// initRepo is Init with an injected clock.
func initRepo(ctx context.Context, dir string, opts InitOptions, now func() time.Time) (err error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if err := checkOfflineDir(dir, opts.OfflineKeys); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if err := prepareEmptyDir(dir); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	s := newSettings(opts)
	r := &Repo{dir: dir, settings: s, now: now}
	r.keys, _ = newKeyring(dir, s, Options{Passphrase: initPassphrase(opts), OfflineKeys: opts.OfflineKeys})
	defer func() {
		if err != nil {
			removeCreated(dir, r.keys)
			err = fmt.Errorf("init %s: %w", dir, err)
		}
	}()
	if err := makeRepoDirs(dir, opts.OfflineKeys); err != nil {
		return err
	}
	st, rootKeys, err := r.genesis(ctx, opts)
	if err != nil {
		return err
	}
	if err := r.writeGenesisRoot(st, rootKeys); err != nil {
		return err
	}
	if err := r.commit(ctx, st, change{targets: true, apps: []string{rollout.RoleName}}); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ".lock"), nil, 0o600); err != nil {
		return err
	}
	if opts.OfflineKeys != "" {
		if err := r.pinInit(opts.OfflineKeys, st.root); err != nil {
			return err
		}
	}
	data, err := r.settings.marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, settingsFile), data, 0o644)
}

// initPassphrase gives OfflinePassphrase for key files in the offline keys
// directory when it is set, and Passphrase for the others.
func initPassphrase(o InitOptions) keys.Passphrase {
	online, offline := Passphrase(o.Passphrase), Passphrase(o.OfflinePassphrase)
	if offline == nil || o.OfflineKeys == "" {
		return online
	}
	dir := filepath.Clean(o.OfflineKeys)
	return func(path string) ([]byte, error) {
		if strings.HasPrefix(filepath.Clean(path), dir+string(filepath.Separator)) {
			return offline(path)
		}
		return online(path)
	}
}

func makeRepoDirs(dir, offline string) error {
	dirs := []string{filepath.Join(dir, "keys")}
	if offline == "" {
		dirs = append(dirs, filepath.Join(dir, "keys", "apps"))
	} else {
		dirs = append(dirs, offline, filepath.Join(offline, "apps"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, d := range []string{metadataDir(dir), targetsDir(dir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// writeGenesisRoot signs and writes root version 1, or, when its keys are
// held elsewhere (no rootKeys), writes it unsigned as the proposal that
// its holders sign.
func (r *Repo) writeGenesisRoot(st *state, rootKeys []signature.Signer) error {
	if len(rootKeys) == 0 {
		return writeRootProposal(r.dir, st.root)
	}
	rootBytes, err := signBytes(st.root, rootKeys...)
	if err != nil {
		return err
	}
	if err := writeMetadata(r.dir, "1.root.json", rootBytes); err != nil {
		return err
	}
	return atomicfile.WriteFile(RootFile(r.dir), rootBytes, 0o644)
}

// checkOfflineDir refuses an offline keys directory inside the repository
// (everything there is on the server) or one that already holds a
// repository's keys (two repositories would share a targets key file).
func checkOfflineDir(dir, offline string) error {
	if offline == "" {
		return nil
	}
	if err := checkInside(dir, offline); err != nil {
		return err
	}
	for _, name := range []string{keyName(metadata.TARGETS), rootKeyName(1)} {
		if _, err := os.Stat(filepath.Join(offline, name)); err == nil {
			return fmt.Errorf("offline keys directory %s already holds %s (another repository's keys?): use an empty directory", offline, name)
		}
	}
	return nil
}

// checkInside refuses an offline keys directory inside the repository.
func checkInside(dir, offline string) error {
	absDir, err1 := filepath.Abs(dir)
	absOff, err2 := filepath.Abs(offline)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("offline keys directory %s: cannot resolve path", offline)
	}
	if rel, err := filepath.Rel(absDir, absOff); err == nil && filepath.IsLocal(rel) || absDir == absOff {
		return fmt.Errorf("offline keys directory %s is inside the repository %s: keep offline keys off the machine that serves it", offline, dir)
	}
	return nil
}

// genesis generates and saves every top-level key Init makes and returns
// the version 1 state (timestamp and snapshot still to be written by
// commit) and the root signers (none when the root keys are held
// elsewhere).
func (r *Repo) genesis(ctx context.Context, opts InitOptions) (*state, []signature.Signer, error) {
	now := r.now()
	root := metadata.Root(expiry(now, opts.Expiries.Root))
	root.Signed.Roles[metadata.ROOT].Threshold = opts.RootThreshold
	var rootSigners []signature.Signer
	for _, k := range opts.RootPublic {
		if err := root.Signed.AddKey(k, metadata.ROOT); err != nil {
			return nil, nil, err
		}
	}
	offline := r.keyDir(metadata.TARGETS)
	for i := 1; len(opts.RootPublic) == 0 && i <= opts.RootKeys; i++ {
		k, err := r.keys.generate(ctx, filepath.Join(offline, rootKeyName(i)), r.settings.KeyWorkFactor)
		if err != nil {
			return nil, nil, err
		}
		if err := root.Signed.AddKey(k.tuf, metadata.ROOT); err != nil {
			return nil, nil, err
		}
		rootSigners = append(rootSigners, k.signer)
	}
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		k, err := r.roleKeyAtGenesis(ctx, role, opts.OnlineSigners[role])
		if err != nil {
			return nil, nil, err
		}
		if err := root.Signed.AddKey(k, role); err != nil {
			return nil, nil, err
		}
	}
	rk, err := r.roleKeyAtGenesis(ctx, rollout.RoleName, opts.OnlineSigners[RolloutKeyName])
	if err != nil {
		return nil, nil, err
	}
	st := &state{
		root:      root,
		targets:   metadata.Targets(expiry(now, opts.Expiries.Targets)),
		snapshot:  metadata.Snapshot(expiry(now, opts.Expiries.Snapshot)),
		timestamp: metadata.Timestamp(expiry(now, opts.Expiries.Timestamp)),
		apps:      map[string]*targetsMD{},
	}
	// commit bumps every version it signs; start one below so the first
	// files are version 1.
	st.targets.Signed.Version = 0
	st.snapshot.Signed.Version = 0
	st.timestamp.Signed.Version = 0
	if err := addRolloutRole(st, rk); err != nil {
		return nil, nil, err
	}
	return st, rootSigners, nil
}

// roleKeyAtGenesis returns the public key of a top-level role for the
// first root: ext's (an online key held elsewhere, which then signs the
// role) when given, else a newly generated key file's.
func (r *Repo) roleKeyAtGenesis(ctx context.Context, role string, ext keys.Signer) (*metadata.Key, error) {
	if ext != nil {
		if err := r.keys.add(ext); err != nil {
			return nil, err
		}
		return ext.Key(), nil
	}
	k, err := r.keys.generate(ctx, filepath.Join(r.keyDir(role), keyName(role)), r.settings.KeyWorkFactor)
	if err != nil {
		return nil, err
	}
	return k.tuf, nil
}

// keyDir is the directory where a new key of role is created: REPO/keys
// for the online roles; the offline keys directory for the others, or
// REPO/keys in a repository of the old layout. "" means nowhere.
func (r *Repo) keyDir(role string) string {
	if isOnline(role) || (r.keys.offline == "" && r.keys.legacy) {
		return r.keys.online
	}
	return r.keys.offline
}

// prepareEmptyDir creates dir, or checks that it is an empty directory.
func prepareEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case os.IsNotExist(err):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("directory is not empty (%d entries, first %q)", len(entries), entries[0].Name())
	}
	return nil
}

// removeCreated undoes a failed Init; dir was empty when Init started, and
// the key files it created elsewhere (the offline keys directory) are
// those kr generated.
func removeCreated(dir string, kr *keyring) {
	for _, name := range []string{"keys", "public", "proposals", "root.json", ".lock", settingsFile} {
		os.RemoveAll(filepath.Join(dir, name))
	}
	for path := range kr.opened {
		if !strings.HasPrefix(path, kr.online) {
			os.Remove(path)
			os.Remove(path + ".pub")
		}
	}
}
