package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

// keyFlags are the flags of a command that signs: where its keys are and
// how to open them.
type keyFlags struct {
	pass         passphraseSource
	offlinePass  string   // --offline-passphrase-file
	offline      string   // --offline-keys DIR
	appKeys      []string // --app-key REF (a key file or a signer URI)
	signers      []string // --signer REF: keys of other roles held elsewhere
	appThreshold int      // --app-threshold K
	online       []string // --online-key ROLE=REF
	trustedRoot  string   // --trusted-root FILE
	now          func() time.Time
}

// addOffline registers --offline-keys and --passphrase-file.
func (kf *keyFlags) addOffline(f *pflag.FlagSet) {
	f.StringVar(&kf.offline, "offline-keys", "", "directory of the offline keys (root, targets, applications); never on the server")
	f.StringVar(&kf.pass.file, "passphrase-file", "", "read the key passphrase from this file")
	f.StringArrayVar(&kf.signers, "signer", nil, "a key held elsewhere (key file or signer URI, e.g. the targets key in an HSM) for whatever role lists it (repeatable)")
	f.StringVar(&kf.offlinePass, "offline-passphrase-file", "", "read the offline keys' passphrase from this file (default: "+envOfflinePassphrase+", else the key passphrase)")
	f.StringVar(&kf.trustedRoot, "trusted-root", "", "root.json to check the repository against before signing (default: the pinned DIR/root.json of --offline-keys, or root.json beside an --app-key file)")
}

// addApp registers --app-key and --app-threshold.
func (kf *keyFlags) addApp(f *pflag.FlagSet, threshold bool) {
	f.StringArrayVar(&kf.appKeys, "app-key", nil, "application key: a key file or a signer URI (repeatable)")
	if threshold {
		f.IntVar(&kf.appThreshold, "app-threshold", 0, "signatures an application's releases need, set at its first publish (default 1)")
	}
}

// passphraseFunc returns a keys.Passphrase that reads the passphrase from
// src once, when the first key file is opened, and gives it for every
// file after that.
func (e *env) passphraseFunc(src passphraseSource) keys.Passphrase {
	var (
		once sync.Once
		p    []byte
		err  error
	)
	return func(path string) ([]byte, error) {
		once.Do(func() {
			if f, ok := e.terminal(); ok && src.file == "" && e.getenv(cmp.Or(src.envVar, envPassphrase)) == "" {
				p, err = e.promptFor(f, path) // asks again after a wrong passphrase
				return
			}
			p, err = e.passphrase(src, false)
		})
		return p, err
	}
}

// offlineSource is where the offline keys' passphrase comes from, if it
// has a source of its own (--offline-passphrase-file or
// FERRY_OFFLINE_PASSPHRASE); ok is false when the key passphrase is used.
func (e *env) offlineSource(kf keyFlags) (src passphraseSource, ok bool) {
	src = passphraseSource{file: kf.offlinePass, envVar: envOfflinePassphrase, flag: "--offline-passphrase-file"}
	return src, kf.offlinePass != "" || e.getenv(envOfflinePassphrase) != ""
}

// keyPassphrase returns the passphrase function of a command that signs:
// the offline keys' own passphrase for files under --offline-keys and
// --app-key files when it has a source, the key passphrase for the others
// (the online keys in DIR/keys).
func (e *env) keyPassphrase(kf keyFlags) keys.Passphrase {
	main := e.passphraseFunc(kf.pass)
	src, ok := e.offlineSource(kf)
	if !ok {
		return main
	}
	offline := e.passphraseFunc(src)
	return func(path string) ([]byte, error) {
		if slices.Contains(kf.appKeys, path) || slices.Contains(kf.signers, path) || kf.offline != "" && within(path, kf.offline) {
			return offline(path)
		}
		return main(path)
	}
}

// within reports whether path is inside dir.
func within(path, dir string) bool {
	ap, err1 := filepath.Abs(path)
	ad, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && filepath.IsLocal(rel)
}

// openRepo opens the repository in dir with the keys kf names. Key files
// are decrypted only when a command signs with them.
func (e *env) openRepo(ctx context.Context, dir string, kf keyFlags) (*repo.Repo, error) {
	pass := e.keyPassphrase(kf)
	o := repo.Options{Passphrase: pass, OfflineKeys: kf.offline, AppThreshold: kf.appThreshold, Now: kf.now}
	online, err := e.onlineSigners(ctx, dir, kf, pass)
	if err != nil {
		return nil, err
	}
	o.Signers = online
	for _, ref := range kf.appKeys {
		s, err := keys.Open(ctx, ref, pass)
		if err != nil {
			return nil, fmt.Errorf("open application key: %w", err)
		}
		o.AppKeys = append(o.AppKeys, s)
	}
	for _, ref := range kf.signers {
		s, err := keys.Open(ctx, ref, pass)
		if err != nil {
			return nil, fmt.Errorf("open signer: %w", err)
		}
		o.Signers = append(o.Signers, s)
	}
	if err := kf.anchor(&o); err != nil {
		return nil, err
	}
	return repo.OpenWith(dir, o)
}

// anchor sets the root the holder checks the repository against:
// --trusted-root FILE; else, with --offline-keys, the pinned copy there
// (repo's default); else the pinned root.json beside a key file given as
// --app-key or --signer (in its directory, or for OFFLINE/apps/APP.age in
// OFFLINE). Without one, a holder's command is refused (ErrNoTrustedRoot).
func (kf keyFlags) anchor(o *repo.Options) error {
	if kf.trustedRoot != "" {
		b, err := checkRootFile(kf.trustedRoot)
		if err != nil {
			return err
		}
		o.TrustedRoot = b
		return nil
	}
	if kf.offline != "" {
		return nil
	}
	for _, ref := range append(slices.Clone(kf.appKeys), kf.signers...) {
		if pin := pinBeside(ref); pin != "" {
			o.PinnedRoot = pin
			return nil
		}
	}
	return nil
}

// pinBeside returns the pinned root kept with the key file ref, or "".
func pinBeside(ref string) string {
	if fi, err := os.Stat(ref); err != nil || !fi.Mode().IsRegular() {
		return "" // a signer URI, or no such file
	}
	dir := filepath.Dir(ref)
	cands := []string{repo.PinnedRootFile(dir)}
	if filepath.Base(dir) == "apps" {
		cands = append(cands, repo.PinnedRootFile(filepath.Dir(dir)))
	}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// missingKeyHint says how to supply the keys a command lacked.
func missingKeyHint(err error) error {
	return withHintIf(err, repo.ErrMissingKey,
		"pass the offline keys directory (--offline-keys DIR), the application's key (--app-key FILE) or online keys held in a KMS or HSM (--online-key ROLE=REF); ferry repo status shows who holds each role")
}

// newKeyHint says where a rotation's new key goes when it needs the offline
// keys directory and none was given.
func newKeyHint(err error, kf keyFlags) error {
	if kf.offline != "" {
		return missingKeyHint(err)
	}
	return withHintIf(err, repo.ErrMissingKey,
		"add --offline-keys DIR (the directory ferry init --offline-keys made): the new key is written there, under the offline keys' passphrase")
}

// withHintIf attaches hint to err when err is target.
func withHintIf(err, target error, hint string) error {
	if errors.Is(err, target) {
		return withHint(err, hint)
	}
	return err
}
