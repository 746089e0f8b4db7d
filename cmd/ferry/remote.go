package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
)

// remoteFlags are the flags of ferry release publish --server: the
// application's role is signed here with the application key alone and
// uploaded to the server's admin API, which signs snapshot and timestamp.
type remoteFlags struct {
	server    string
	ca        string
	tokenFile string
	state     string // --publisher-state
	publishes bool   // set by add: the command publishes, with a publisher token
}

func (rf *remoteFlags) add(f *pflag.FlagSet) {
	rf.publishes = true
	f.StringVar(&rf.server, "server", "", "publish through this ferry server's admin API (https://...) instead of --repo")
	f.StringVar(&rf.ca, "ca", "", "with --server: PEM CA certificate(s) to verify the server with (default: system roots)")
	f.StringVar(&rf.tokenFile, "token-file", "", "with --server: file holding the publisher token (ferry token create)")
	f.StringVar(&rf.state, "publisher-state", "", "with --server: directory of the record of the last role signed per application (default: in the user's state directory; keep it between pipeline runs)")
}

// publisherStateHelp is the paragraph of --help of the commands that sign
// an application's role for a server.
const publisherStateHelp = `The pipeline keeps a record of the last role it signed for each application and the server accepted
(version, sha256, minimum safe version) in --publisher-state DIR (default: ferry/publisher/HASH in the
user's state directory, one per server URL), and refuses to sign on top of an older role, another
role of the recorded version, or one whose minimum safe version went down without being signed as
lowered: a stolen server cannot replay an old role to get a lower minimum signed. Keep DIR between
pipeline runs (a cache or artifact of the pipeline); remove APP.json in it only when the repository
was rebuilt on purpose.`

// recordFile is the file of app's publisher record.
func (e *env) recordFile(rf remoteFlags, app string) (string, error) {
	dir := rf.state
	if dir == "" {
		base, err := e.userStateDir()
		if err != nil {
			return "", withHint(fmt.Errorf("no state directory for the publisher record: %w", err), "pass --publisher-state DIR")
		}
		sum := sha256.Sum256([]byte(strings.TrimRight(rf.server, "/")))
		dir = filepath.Join(base, "ferry", "publisher", hex.EncodeToString(sum[:6]))
	}
	return filepath.Join(dir, app+".json"), nil
}

// publisherRecord reads app's publisher record: its file and the record
// (nil when this publisher has none yet).
func (e *env) publisherRecord(rf remoteFlags, app string) (string, *repo.PublisherRecord, error) {
	file, err := e.recordFile(rf, app)
	if err != nil {
		return "", nil, err
	}
	rec, err := repo.ReadPublisherRecord(file, app)
	return file, rec, err
}

// roleAndRecord reads app's publisher record (its file, and nil when
// there is none yet) and the role the server serves now. With no record
// while the server serves a role, it warns: that role is trusted as it is
// (R63, review 9 F8), which is how a fresh CI runner without its state
// directory starts every run.
func (e *env) roleAndRecord(ctx context.Context, c *server.AdminClient, rf remoteFlags, app string) (string, *repo.PublisherRecord, []byte, error) {
	file, last, err := e.publisherRecord(rf, app)
	if err != nil {
		return "", nil, nil, err
	}
	cur, err := c.AppRole(ctx, app)
	if err != nil {
		return "", nil, nil, err
	}
	if last == nil && len(cur) > 0 {
		version := "?"
		if rec, err := repo.RecordOf(app, cur); err == nil {
			version = fmt.Sprint(rec.RoleVersion)
		}
		fmt.Fprintf(e.stderr, "ferry: warning: no publisher record of %s at %s: the server's role (version %s) is trusted as the last one signed; a pipeline that starts empty must keep --publisher-state between runs (docs/publishing.md)\n",
			app, file, version)
	}
	return file, last, cur, nil
}

// saveRecord records role as the last role of app this publisher signed
// or verified (nothing for an empty role).
func (e *env) saveRecord(file, app string, role []byte) error {
	if len(role) == 0 {
		return nil
	}
	rec, err := repo.RecordOf(app, role)
	if err != nil {
		return err
	}
	if err := repo.WritePublisherRecord(file, rec); err != nil {
		return fmt.Errorf("%w (the server accepted the role; the next run checks against the older record)", err)
	}
	return nil
}

// recordError names the publisher record in an error that comes from it.
func recordError(err error, file string) error {
	if errors.Is(err, repo.ErrOlderRole) {
		return fmt.Errorf("%w (publisher record %s)", err, file)
	}
	return err
}

// check says what is missing or conflicting for a remote publish.
func (rf *remoteFlags) check(localRepo string, kf keyFlags) error {
	switch {
	case rf.server == "" && localRepo == "":
		return withHint(errors.New("no repository: pass --repo DIR (local) or --server URL (remote)"), "--repo DIR signs here with the keys it names; --server URL uploads to ferry serve's admin API (see --help)")
	case rf.server != "" && localRepo != "":
		return errors.New("use either --repo (local) or --server (remote), not both")
	case rf.server == "" && (rf.tokenFile != "" || rf.ca != "" || rf.state != ""):
		return errors.New("--token-file, --ca and --publisher-state go with --server")
	case rf.server != "" && rf.tokenFile == "":
		return withHint(errors.New("--server needs --token-file"), "create a token on the server with: ferry token create --repo REPO --app APP")
	case rf.server != "" && len(kf.appKeys) == 0:
		return errors.New("--server needs --app-key: the application's role is signed on this machine")
	case rf.server != "" && (kf.offline != "" || kf.appThreshold != 0):
		return errors.New("--offline-keys and --app-threshold go with --repo: a remote publish signs with --app-key alone")
	}
	return nil
}

// publishRemote signs the next version of the application's role with its
// key and uploads it with the files.
// Every --app-key signs (an application whose threshold is k needs k).
func (e *env) publishRemote(ctx context.Context, rf remoteFlags, passFn keys.Passphrase, appKeys []string, rel repo.Release, files []string) error {
	c, err := e.adminClient(rf)
	if err != nil {
		return err
	}
	signers, err := openSigners(ctx, passFn, appKeys)
	if err != nil {
		return err
	}
	file, last, cur, err := e.roleAndRecord(ctx, c, rf, rel.App)
	if err != nil {
		return err
	}
	signed, err := repo.SignRelease(ctx, signers, cur, repo.Batch{Release: rel, Files: files}, repo.SignOptions{Last: last})
	if err != nil {
		return recordError(err, file)
	}
	if signed == nil {
		e.alreadyPublished(rel)
		return e.saveRecord(file, rel.App, cur)
	}
	published, err := c.PublishWith(ctx, rel.App, signed, server.PublishOptions{Rollout: rel.Rollout})
	if err != nil {
		return err
	}
	if err := e.saveRecord(file, rel.App, signed.Role); err != nil {
		return err
	}
	for _, en := range published {
		fmt.Fprintf(e.stdout, "published %s (%d bytes, sha256 %s)\n", en.Path, en.Length, short(en.SHA256))
	}
	e.printStaged(ctx, c, rel)
	return nil
}

func (e *env) adminClient(rf remoteFlags) (*server.AdminClient, error) {
	tok, err := os.ReadFile(rf.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	use := useAdmin
	if rf.publishes {
		use = usePublish
	}
	e.warnReadableSecret(rf.tokenFile, "token file", use)
	tok = bytes.TrimSpace(tok)
	if len(tok) == 0 {
		return nil, fmt.Errorf("token file %s is empty", rf.tokenFile)
	}
	if rf.ca == "" {
		return server.NewAdminClient(rf.server, string(tok), nil)
	}
	roots, err := loadCA(rf.ca)
	if err != nil {
		return nil, err
	}
	return server.NewAdminClient(rf.server, string(tok), roots)
}

// What the reader of a token file can do with it, for the warning of
// warnReadableSecret. A command that reads the admin API's status takes
// either kind of admin token, and the secret does not say which it is.
const (
	usePublish = "publish with it"
	useEnroll  = "enroll installations with it"
	useAdmin   = "use it as you do (a publisher token publishes, a rollout token makes rollout decisions)"
)

// warnReadableSecret warns when the secret file at path may be read by
// group or others (on systems with Unix permissions): whoever reads it can
// use it, as use says.
func (e *env) warnReadableSecret(path, what, use string) {
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o044 == 0 {
		return
	}
	fmt.Fprintf(e.stderr, "ferry: warning: %s %s is readable by group or others (mode %04o): anyone who can read it can %s\n", what, path, fi.Mode().Perm(), use)
	fmt.Fprintf(e.stderr, "ferry: hint: chmod 600 %s, or create it under umask 077\n", path)
}

// openSigners opens every --app-key.
func openSigners(ctx context.Context, passFn keys.Passphrase, refs []string) ([]keys.Signer, error) {
	var signers []keys.Signer
	for _, ref := range refs {
		s, err := keys.Open(ctx, ref, passFn)
		if err != nil {
			return nil, fmt.Errorf("open application key: %w", err)
		}
		signers = append(signers, s)
	}
	return signers, nil
}

// refreshRemote re-signs application roles on the pipeline's side, with
// the same targets and a new expiry, and uploads them: ferry repo refresh
// --server.
func (e *env) refreshRemote(ctx context.Context, rf remoteFlags, kf keyFlags, o repo.RefreshOptions) error {
	switch {
	case len(o.Roles) == 0:
		return errors.New("--server needs --role APP: the application roles to re-sign")
	case o.OnlineOnly || o.Force:
		return errors.New("--online-only and --force go with --repo: the server re-signs snapshot and timestamp itself")
	case len(kf.signers) > 0:
		return errors.New("--server signs with --app-key only")
	}
	c, err := e.adminClient(rf)
	if err != nil {
		return err
	}
	signers, err := openSigners(ctx, e.keyPassphrase(kf), kf.appKeys)
	if err != nil {
		return err
	}
	for _, app := range o.Roles {
		file, last, cur, err := e.roleAndRecord(ctx, c, rf, app)
		if err != nil {
			return err
		}
		s, err := repo.ResignRole(ctx, signers, app, cur, repo.SignOptions{Last: last})
		if err != nil {
			return recordError(err, file)
		}
		if _, err := c.Publish(ctx, app, s); err != nil {
			return err
		}
		if err := e.saveRecord(file, app, s.Role); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "re-signed role %s on %s\n", app, rf.server)
	}
	return nil
}
