package repo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/keys"
)

// initRepo is Init with an injected clock.
func initRepo(ctx context.Context, dir string, opts InitOptions, now func() time.Time) (err error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if err := prepareEmptyDir(dir); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			removeCreated(dir)
			err = fmt.Errorf("init %s: %w", dir, err)
		}
	}()
	r := &Repo{dir: dir, passphrase: opts.Passphrase, settings: newSettings(opts), now: now, signers: map[string]*roleKey{}}
	for _, d := range []string{filepath.Join(dir, "keys"), filepath.Join(dir, "keys", "apps")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, d := range []string{metadataDir(dir), targetsDir(dir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	st, rootKeys, err := r.genesis(ctx, opts)
	if err != nil {
		return err
	}
	rootBytes, err := signBytes(st.root, rootKeys...)
	if err != nil {
		return err
	}
	if err := writeMetadata(dir, "1.root.json", rootBytes); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "root.json"), rootBytes, 0o644); err != nil {
		return err
	}
	if err := r.commit(st, change{targets: true}); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ".lock"), nil, 0o600); err != nil {
		return err
	}
	data, err := r.settings.marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, settingsFile), data, 0o644)
}

// genesis generates and saves every top-level key and returns the version 1
// state (timestamp and snapshot still to be written by commit) and the root
// signers.
func (r *Repo) genesis(ctx context.Context, opts InitOptions) (*state, []signature.Signer, error) {
	now := r.now()
	root := metadata.Root(expiry(now, opts.Expiries.Root))
	root.Signed.Roles[metadata.ROOT].Threshold = opts.RootThreshold
	var rootSigners []signature.Signer
	for i := 1; i <= opts.RootKeys; i++ {
		k, err := r.generate(ctx, rootKeyFile(r.dir, i))
		if err != nil {
			return nil, nil, err
		}
		if err := root.Signed.AddKey(k.tuf, metadata.ROOT); err != nil {
			return nil, nil, err
		}
		rootSigners = append(rootSigners, k.signer)
	}
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		k, err := r.generate(ctx, keyFile(r.dir, role))
		if err != nil {
			return nil, nil, err
		}
		if err := root.Signed.AddKey(k.tuf, role); err != nil {
			return nil, nil, err
		}
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
	return st, rootSigners, nil
}

func (r *Repo) generate(ctx context.Context, file string) (*roleKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	priv, err := keys.Generate()
	if err != nil {
		return nil, err
	}
	if err := keys.Save(file, priv, r.passphrase, r.settings.KeyWorkFactor); err != nil {
		return nil, err
	}
	k, err := newRoleKey(priv)
	if err != nil {
		return nil, err
	}
	r.signers[file] = k
	return k, nil
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

// removeCreated undoes a failed Init; dir was empty when Init started.
func removeCreated(dir string) {
	for _, name := range []string{"keys", "public", "root.json", ".lock", settingsFile} {
		os.RemoveAll(filepath.Join(dir, name))
	}
}
