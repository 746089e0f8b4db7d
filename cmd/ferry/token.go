package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

func (e *env) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the publisher and rollout tokens of the admin API and the enrollment tokens of agents",
		Example: `  (umask 077 && ferry token create --repo ./repo --app hello > hello.token)
  (umask 077 && ferry token create --repo ./repo --rollout --app hello > hello-rollout.token)
  (umask 077 && ferry token create --repo ./repo --enroll --app hello --expires 24h --uses 10 > enroll.token)
  ferry token list --repo ./repo
  ferry token revoke --repo ./repo 0123456789ab`,
	}
	cmd.AddCommand(e.tokenCreateCmd(), e.tokenListCmd(), e.tokenRevokeCmd())
	return cmd
}

// tokensFile is where a repository keeps its token hashes.
func tokensFile(dir string) (string, error) {
	if _, err := repo.Open(dir, nil); err != nil {
		return "", err
	}
	return filepath.Join(dir, server.TokensFile), nil
}

type tokenCreateFlags struct {
	dir, app, db    string
	enroll, rollout bool
	expires         dayDuration
	uses            int
}

func (e *env) tokenCreateCmd() *cobra.Command {
	var fl tokenCreateFlags
	cmd := &cobra.Command{
		Use:   "create --repo DIR (--app APP [--rollout] | --enroll [--app APP] [--expires D] [--uses N])",
		Short: "Make a publisher or rollout token for one application, or an enrollment token for agents",
		Long: `Make a token that lets a release pipeline publish APP through ferry serve's admin API
(ferry release publish --server, min-version --server, repo refresh --server). Only its SHA-256 is
stored, in DIR/` + server.TokensFile + ` (mode 0600); the token itself is printed once, alone on standard
output (what it is goes to standard error), and cannot be shown again: redirect it into a file only
its pipeline can read. A token publishes nothing on its own: every upload must also be signed by the
application's key. Publisher and rollout tokens never expire: ferry token revoke ends them.

A publisher token cannot make rollout decisions. With --rollout, the token makes them instead
(ferry rollout start, halt, resume, pull, promote --server: signed with the server's online rollout
key) and cannot publish; both kinds read ferry rollout status. Keep the rollout token with the
people or the system that decide rollouts, not in the release pipeline: whoever steals the
pipeline's secrets then cannot halt, pull or widen a rollout. Tokens made before scopes existed
are publisher tokens.

With --enroll, the token enrolls agents instead (ferry agent enroll, docs/reporting.md): each
enrollment exchanges it for a credential of one installation. It is kept by its hash in the
server's database (--db, default DIR/` + storeFile + `), may be limited to installations of one
application (--app), and enroll at most --uses installations. It always expires: after 7 days, or
after --expires (e.g. 24h or 30d); standard error says when. ferry token list shows how often it
was used, and ferry token revoke ends it at once.`,
		Example: `  (umask 077 && ferry token create --repo ./repo --app hello > hello.token)
  (umask 077 && ferry token create --repo ./repo --rollout --app hello > hello-rollout.token)
  ferry token create --repo ./repo --app hello      # the token on stdout, what it is on stderr
  (umask 077 && ferry token create --repo ./repo --enroll --expires 24h --uses 50 > enroll.token)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fl.enroll && fl.rollout {
				return errors.New("use either --enroll or --rollout, not both")
			}
			if fl.enroll {
				return e.createEnrollToken(cmd.Context(), fl)
			}
			if fl.app == "" {
				return withHint(errors.New("no --app given"), "a publisher or rollout token is for one application: --app APP; or --enroll for an enrollment token")
			}
			if fl.expires != 0 || fl.uses != 0 || fl.db != "" {
				return errors.New("--expires, --uses and --db are for enrollment tokens (--enroll)")
			}
			file, err := tokensFile(fl.dir)
			if err != nil {
				return err
			}
			scope, what := server.ScopePublish, "token"
			if fl.rollout {
				scope, what = server.ScopeRollout, "rollout token"
			}
			secret, t, err := server.CreateScopedToken(file, fl.app, scope, time.Now())
			if err != nil {
				return err
			}
			// Said as the enrollment token's expiry is: a pipeline secret
			// valid until revoked should not be learnt from token list.
			fmt.Fprintf(e.stderr, "created %s %s for application %s (it never expires: ferry token revoke %s ends it); it is shown only now, on standard output\n", what, t.ID, t.App, t.ID)
			fmt.Fprintln(e.stdout, secret)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.dir, "repo", "", "repository directory (required)")
	f.StringVar(&fl.app, "app", "", "the application the token may publish (required without --enroll); with --enroll, the only application it enrolls and its installations may report about")
	f.BoolVar(&fl.enroll, "enroll", false, "make an enrollment token for agents (ferry agent enroll)")
	f.BoolVar(&fl.rollout, "rollout", false, "make a rollout token: it makes APP's rollout decisions through the admin API, and cannot publish")
	f.Var(&fl.expires, "expires", "with --enroll: the token expires after this long (e.g. 24h or 30d; default 7d)")
	f.IntVar(&fl.uses, "uses", 0, "with --enroll: the token enrolls at most this many installations (0: no limit)")
	f.StringVar(&fl.db, "db", "", "with --enroll: the server's database (default: DIR/"+storeFile+")")
	cmd.MarkFlagRequired("repo")
	return cmd
}

func (e *env) createEnrollToken(ctx context.Context, fl tokenCreateFlags) error {
	if fl.uses < 0 {
		return errors.New("--uses must not be negative")
	}
	if fl.app != "" {
		if err := release.ValidApp(fl.app); err != nil {
			return err
		}
	}
	if _, err := repo.Open(fl.dir, nil); err != nil {
		return err
	}
	st, err := openStore(ctx, fl.dir, fl.db)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	secret, t, err := server.NewEnrollToken(now)
	if err != nil {
		return err
	}
	if fl.app != "" {
		t.Scope = fl.app
	}
	if fl.expires > 0 {
		t.Expires = t.Created.Add(time.Duration(fl.expires))
	}
	t.MaxUses = fl.uses
	if err := st.CreateToken(ctx, t); err != nil {
		return err
	}
	scope := "any application"
	if fl.app != "" {
		scope = "application " + fl.app
	}
	fmt.Fprintf(e.stderr, "created enrollment token %s for %s (expires %s, %s); it is shown only now, on standard output\n", t.ID, scope, t.Expires.Format(time.RFC3339), usesText(t))
	fmt.Fprintln(e.stdout, secret)
	return nil
}

func usesText(t store.Token) string {
	if t.MaxUses == 0 {
		return fmt.Sprintf("%d uses, no limit", t.Uses)
	}
	return fmt.Sprintf("%d of %d uses", t.Uses, t.MaxUses)
}

func (e *env) tokenListCmd() *cobra.Command {
	var dir, db string
	cmd := &cobra.Command{
		Use:   "list --repo DIR",
		Short: "List the publisher, rollout and enrollment tokens (their IDs, never the tokens)",
		Long: `List the tokens: publisher and rollout tokens (DIR/` + server.TokensFile + `) and enrollment tokens (the server's
database, --db, default DIR/` + storeFile + `), with how often each enrollment token was used, when it
expires and whether it was revoked.`,
		Example: `  ferry token list --repo ./repo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := tokensFile(dir)
			if err != nil {
				return err
			}
			ts, err := server.ListTokens(file)
			if err != nil {
				return err
			}
			es, err := enrollTokens(cmd.Context(), dir, db)
			if err != nil {
				return err
			}
			if len(ts)+len(es) == 0 {
				fmt.Fprintln(e.stdout, "no tokens")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAPP\tCREATED\tKIND\tUSES\tEXPIRES\tSTATE")
			for _, t := range ts {
				kind := "publisher"
				if t.Of() == server.ScopeRollout {
					kind = "rollout"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\tnever\tactive\n", t.ID, t.App, t.Created.Format(time.RFC3339), kind)
			}
			now := time.Now()
			for _, t := range es {
				uses, expires := strconv.Itoa(t.Uses), "never"
				if t.MaxUses > 0 {
					uses += "/" + strconv.Itoa(t.MaxUses)
				}
				if !t.Expires.IsZero() {
					expires = t.Expires.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\tenroll\t%s\t%s\t%s\n", t.ID, t.Scope, t.Created.Format(time.RFC3339), uses, expires, tokenState(t, now))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.Flags().StringVar(&db, "db", "", "the server's database (default: DIR/"+storeFile+")")
	cmd.MarkFlagRequired("repo")
	return cmd
}

// enrollTokens lists the enrollment tokens; a default database that does
// not exist yet holds none (and is not created).
func enrollTokens(ctx context.Context, dir, db string) ([]store.Token, error) {
	if db == "" {
		if _, err := os.Stat(filepath.Join(dir, storeFile)); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	st, err := openStore(ctx, dir, db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ts, err := st.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ts, func(t store.Token) bool { return t.Kind != store.Enroll }), nil
}

func tokenState(t store.Token, now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked " + t.Revoked.Format(time.RFC3339)
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return "used up"
	}
	return "active"
}

func (e *env) tokenRevokeCmd() *cobra.Command {
	var dir, db string
	cmd := &cobra.Command{
		Use:     "revoke --repo DIR ID",
		Short:   "Revoke a publisher, rollout or enrollment token; a running server refuses it from its next request",
		Example: `  ferry token revoke --repo ./repo 0123456789ab`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := tokensFile(dir)
			if err != nil {
				return err
			}
			t, err := server.RevokeToken(file, args[0])
			if err == nil {
				kind := "publisher"
				if t.Of() == server.ScopeRollout {
					kind = "rollout"
				}
				fmt.Fprintf(e.stdout, "revoked %s token %s of application %s\n", kind, t.ID, t.App)
				return nil
			}
			if !errors.Is(err, server.ErrNoToken) {
				return err
			}
			if err := e.revokeEnrollToken(cmd.Context(), dir, db, args[0]); err != nil {
				return withHint(err, "ferry token list --repo "+dir+" shows the token IDs")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.Flags().StringVar(&db, "db", "", "the server's database (default: DIR/"+storeFile+")")
	cmd.MarkFlagRequired("repo")
	return cmd
}

func (e *env) revokeEnrollToken(ctx context.Context, dir, db, id string) error {
	es, err := enrollTokens(ctx, dir, db)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(es, func(t store.Token) bool { return t.ID == id })
	if i < 0 {
		return fmt.Errorf("revoke token %q: %w", id, server.ErrNoToken)
	}
	if t := es[i]; !t.Revoked.IsZero() {
		fmt.Fprintf(e.stdout, "enrollment token %s was revoked already, at %s\n", id, t.Revoked.Format(time.RFC3339))
		return nil
	}
	st, err := openStore(ctx, dir, db)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.CountInstallations(ctx, store.InstallationQuery{TokenID: id})
	if err != nil {
		return err
	}
	if err := st.RevokeToken(ctx, id, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoked enrollment token %s: %s\n", id, cutOff(n))
	return nil
}

// cutOff says what revoking an enrollment token did to the n
// installations enrolled with it (R69): a token revoked to clean up can
// blind a guarded rollout.
func cutOff(n int) string {
	switch n {
	case 0:
		return "no installation is enrolled with it"
	case 1:
		return "1 installation enrolled with it is cut off (its reports are refused and guarded rollouts stop counting its evidence) until it enrolls again with another token"
	}
	return fmt.Sprintf("%d installations enrolled with it are cut off (their reports are refused and guarded rollouts stop counting their evidence) until they enroll again with another token", n)
}
