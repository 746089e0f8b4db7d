package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

type serveFlags struct {
	dir             string
	addr            string
	addrFile        string
	tlsCert, tlsKey string
	selfSigned      string
	accessLog       string
	refresh         time.Duration
	pass            passphraseSource
	online          []string // --online-key ROLE=REF
	maxUpload       int64
	db              string
	// metricsTokenFile holds the bearer token of /metrics ("": no metrics).
	metricsTokenFile string
	staleAfter       time.Duration // ferry_installations_stale: silent for longer than this
	// dashboardCredential holds the dashboard's hashed password ("": no dashboard).
	dashboardCredential string
	guardTick           time.Duration // how often guarded rollouts are evaluated
	// The reporting API's rates: every request per client address, and
	// the batches of the installations one enrollment token enrolled.
	reportAddressRate, reportTokenRate server.Rate
}

// rateFlag is a flag value for a server.Rate, in server.ParseRate's form.
type rateFlag struct{ r *server.Rate }

func (f rateFlag) String() string {
	if f.r == nil {
		return ""
	}
	return f.r.String()
}

func (f rateFlag) Type() string { return "rate" }

func (f rateFlag) Set(s string) error {
	r, err := server.ParseRate(s)
	if err != nil {
		return err
	}
	*f.r = r
	return nil
}

func (e *env) serveCmd() *cobra.Command {
	fl := serveFlags{reportAddressRate: server.DefaultAddressRate, reportTokenRate: server.DefaultTokenReportRate}
	cmd := &cobra.Command{
		Use:   "serve --repo DIR --addr HOST:PORT (--tls-cert F --tls-key F | --self-signed CAFILE)",
		Short: "Serve a repository over HTTPS",
		Long: `Serve DIR/public (metadata and targets) over HTTPS until SIGINT or SIGTERM. With --self-signed
CAFILE, ferry issues its own certificate for the listen address from a CA of its own: the CA
certificate is CAFILE, for clients (--ca CAFILE), and its private key is kept next to it in
CAFILE with .key for .pem (ca.pem: ca.key, mode 0600). The same CA is reused on every start, so
clients keep working across restarts; when the key file is missing a new CA is made and both
files are written, only once the address is listening (a start that fails writes nothing).
Remove both files to replace the CA. With --addr 127.0.0.1:0 a free port is chosen; the
URL is printed and, with --addr-file, written to a file. When the passphrase of the online keys
is available (FERRY_PASSPHRASE or --passphrase-file), timestamp, and snapshot when due, are
re-signed every --refresh-interval with the online keys in DIR/keys alone, as ferry repo refresh
--online-only does. With --online-key snapshot=REF --online-key timestamp=REF (a KMS key or a
PKCS#11 token, see docs/signers.md) those keys sign instead, and DIR holds no private key at all. The server never opens an offline key: an offline role (targets, an
application) that is due or expired is named in a warning with the time left, and clients keep
updating until it expires.

The admin API is served under /api/v1/ on the same listener: release pipelines publish with
ferry release publish --server, authenticated by a token of ferry token create, and each upload,
signed by the application's key, is checked against its delegation; the server signs snapshot and
timestamp with its online keys (so it needs the passphrase). Uploads are streamed to DIR/.uploads.
Rollout decisions (ferry rollout ... --server, ferry release promote --server) are signed by the
server with the repository's online rollout key, authenticated by a rollout token (ferry token
create --rollout; a publisher token cannot decide). Without the online keys' passphrase (and no
--online-key rollout=REF) the server cannot sign them: it says so at start, guarded rollouts are
not enforced, decisions are answered 503, ferry_guard_can_sign is 0 and the dashboard says it.

Installations report to /api/v1/enroll and /api/v1/events (docs/reporting.md): agents enroll
with a token of ferry token create --enroll and send their audit-log events. The server's
state (installations, events, enrollment tokens) is kept in --db: a SQLite file, DIR/` + storeFile + ` by
default, or a PostgreSQL database given by a postgres:// URL. Their rates, as BURST,N/s (that
many at once, then N a second; also /m, /h): --report-address-rate bounds every request from one
client address (a fleet behind one NAT shares it), --report-token-rate the batches that all the
installations of one enrollment token send together; past either the answer is 429 with
Retry-After.

With --metrics-token-file FILE, Prometheus metrics (requests and bytes served, check-ins, events,
installs, failures, rollbacks, security events, each rollout's state and share, the seconds until
each signed role expires; docs/metrics.md) are served on /metrics to a client that sends the
token in FILE as "Authorization: Bearer TOKEN" (Prometheus: authorization.credentials_file);
anyone else gets 401. Without the flag there is no /metrics.

With --dashboard-credential FILE (written by ferry dashboard credential), a web dashboard is served
on /dashboard/ (docs/dashboard.md): the fleet by version and channel, each release's installs,
failures and rollbacks over time, the rollouts in progress, security events with their evidence,
stale installations, and buttons that start, widen, halt, resume and pull a rollout (signed with
the online rollout key, as the admin API signs them). Sign-in takes the password whose argon2id hash
is in FILE; sessions are cookies that are Secure, HttpOnly and SameSite=Strict, every action carries a
CSRF token, and sign-in attempts are rate-limited. Without the flag there is no dashboard.

Guarded rollouts (ferry rollout start --stages or --budget, docs/rollouts.md): every --guard-tick
the server evaluates what the enrolled installations reported about each guarded release, and
signs with its online rollout key a halt when the failure budget is crossed (failed health
checks, roll-backs and installations silent for two check intervals), or the next stage when the
stage has waited and has enough healthy reports.` + serveLimits,
		Example: `  ferry serve --repo ./repo --addr 127.0.0.1:8443 --self-signed ./ca.pem
  ferry serve --repo ./repo --addr :443 --tls-cert cert.pem --tls-key key.pem
  ferry serve --repo ./repo --addr 127.0.0.1:0 --self-signed ./ca.pem --addr-file ./url.txt
  ferry serve --repo ./repo --addr :443 --tls-cert cert.pem --tls-key key.pem --access-log /var/log/ferry/access.log
  ferry serve --repo ./repo --addr :443 --tls-cert cert.pem --tls-key key.pem --metrics-token-file /etc/ferry/metrics.token
  ferry serve --repo ./repo --addr :443 --tls-cert cert.pem --tls-key key.pem --dashboard-credential /etc/ferry/dashboard.cred
  ferry serve --repo ./repo --addr :443 --tls-cert cert.pem --tls-key key.pem --report-address-rate 50000,10000/s --report-token-rate 5000,1000/s
  ferry serve --repo ./repo --addr :443 --tls-cert cert.pem --tls-key key.pem \
      --online-key 'snapshot=awskms://alias/ferry-snapshot?region=eu-west-1' \
      --online-key 'timestamp=awskms://alias/ferry-timestamp?region=eu-west-1'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return e.serve(cmd.Context(), fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.dir, "repo", "", "repository directory (required)")
	f.StringVar(&fl.addr, "addr", "127.0.0.1:8443", "address to listen on (port 0: any free port)")
	f.StringVar(&fl.addrFile, "addr-file", "", "write the URL served on to this file once listening")
	f.StringVar(&fl.tlsCert, "tls-cert", "", "PEM certificate chain file")
	f.StringVar(&fl.tlsKey, "tls-key", "", "PEM private key file")
	f.StringVar(&fl.selfSigned, "self-signed", "", "serve with a certificate from ferry's own CA, kept in this file (key: same name, .key)")
	f.StringVar(&fl.accessLog, "access-log", "", "write the access log (JSON lines, duration_ms) to FILE (appended) or - for stdout (default: stderr)")
	f.DurationVar(&fl.refresh, "refresh-interval", time.Hour, "how often to re-sign metadata that is due (0: never)")
	f.StringVar(&fl.pass.file, "passphrase-file", "", "read the online keys' passphrase from this file (enables automatic refresh and remote publishing)")
	f.StringArrayVar(&fl.online, "online-key", nil, "snapshot=REF, timestamp=REF or rollout=REF: an online key in a KMS or HSM, so DIR holds no private key (repeatable)")
	f.Int64Var(&fl.maxUpload, "max-upload", server.DefaultMaxUpload, "largest request body the admin API accepts, in bytes")
	f.StringVar(&fl.db, "db", "", "the server's database: a SQLite file or a postgres:// URL (default: DIR/"+storeFile+")")
	f.StringVar(&fl.metricsTokenFile, "metrics-token-file", "", "serve Prometheus metrics on /metrics to clients that send this file's token as a bearer token (docs/metrics.md)")
	f.DurationVar(&fl.staleAfter, "stale-after", 24*time.Hour, "an installation that has not checked in for this long is stale: counted in ferry_installations_stale (0: no such metric) and marked on the dashboard")
	f.StringVar(&fl.dashboardCredential, "dashboard-credential", "", "serve the web dashboard on /dashboard/, signing in with the password hashed in this file (ferry dashboard credential; docs/dashboard.md)")
	f.DurationVar(&fl.guardTick, "guard-tick", server.DefaultGuardTick, fmt.Sprintf("how often guarded rollouts are evaluated (at most %v): a crossed failure budget halts within it", server.MaxGuardTick))
	f.Var(rateFlag{&fl.reportAddressRate}, "report-address-rate", "reporting API: requests per client address, BURST,N/s (every request counts; raise it for a larger fleet behind one address)")
	f.Var(rateFlag{&fl.reportTokenRate}, "report-token-rate", "reporting API: event batches of all the installations one enrollment token enrolled, BURST,N/s")
	cmd.MarkFlagRequired("repo")
	return cmd
}

func (e *env) serve(ctx context.Context, fl serveFlags) error {
	// The server's goroutines (requests, reporting, the guard, the refresher)
	// all log to stderr: one lock makes each line whole, whatever stderr is.
	le := *e
	le.stderr = &lockedWriter{w: e.stderr}
	e = &le
	tlsCfg, ca, err := serveTLS(fl)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fl.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	url := "https://" + ln.Addr().String() + "/"
	ko, err := e.serveKeys(ctx, fl)
	if err != nil {
		return err
	}
	if err := e.startRefresher(ctx, fl, ko); err != nil {
		return err
	}
	st, err := openStore(ctx, fl.dir, fl.db)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics, metricsH, err := e.serveMetrics(fl, ko, st)
	if err != nil {
		return err
	}
	admin, g, err := e.adminAPI(fl, ko, st, metrics)
	if err != nil {
		return err
	}
	dash, err := e.serveDashboard(fl, ko, st, g)
	if err != nil {
		return err
	}
	e.checkRolloutSigner(ctx, g, st)
	report, err := server.Reporting(server.ReportConfig{Store: st, Metrics: metrics, Logger: slog.New(slog.NewJSONHandler(e.stderr, nil)),
		AddressRate: fl.reportAddressRate, TokenReportRate: fl.reportTokenRate})
	if err != nil {
		return err
	}
	// Only now that the address is ours and the rest is ready: a start that
	// fails leaves the CA file that clients of a running server use alone.
	if err := e.saveCA(ca, fl.selfSigned); err != nil {
		return err
	}
	if fl.selfSigned != "" {
		fmt.Fprintf(e.stdout, "serving %s on %s (CA certificate: %s, its key: %s)\n", fl.dir, url, fl.selfSigned, server.CAKeyFile(fl.selfSigned))
	} else {
		fmt.Fprintf(e.stdout, "serving %s on %s\n", fl.dir, url)
	}
	if fl.addrFile != "" {
		if err := atomicfile.WriteFile(fl.addrFile, []byte(url+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "admin API on %sapi/v1/ (tokens of ferry token create: publisher; --rollout: rollout decisions; --enroll: installations, which enroll and report on /api/v1/enroll and /api/v1/events)\n", url)
	if metricsH != nil {
		fmt.Fprintf(e.stdout, "metrics on %smetrics (bearer token: %s)\n", url, fl.metricsTokenFile)
	}
	if dash != nil {
		fmt.Fprintf(e.stdout, "dashboard on %sdashboard/ (credential: %s)\n", url, fl.dashboardCredential)
	}
	logw, closeLog, err := e.accessLogWriter(fl.accessLog)
	if err != nil {
		return err
	}
	defer closeLog()
	gctx, stopGuard := context.WithCancel(ctx)
	guardDone := make(chan struct{})
	go func() { defer close(guardDone); g.Run(gctx) }()
	defer func() { stopGuard(); <-guardDone }()
	err = runServerWith(ctx, ln, filepath.Join(fl.dir, "public"), apiHandlers{admin: admin, report: report, metrics: metrics, metricsH: metricsH, dashboard: dash}, tlsCfg, logw)
	if err == nil || errors.Is(err, context.Canceled) {
		fmt.Fprintln(e.stdout, "server stopped")
		return nil
	}
	return err
}

// checkRolloutSigner says at start, in one line, when the online rollout
// key cannot sign: guarded rollouts are then not enforced (a crossed budget
// is not halted) and rollout decisions fail. Serving metadata goes on; the
// ferry_guard_can_sign metric (alert FerryGuardCannotSign) and the
// dashboard's banner keep saying it.
func (e *env) checkRolloutSigner(ctx context.Context, g *server.Guard, st store.Store) {
	err := g.CheckSigner(ctx)
	if err == nil {
		return
	}
	plans, perr := st.ListPlans(ctx, "")
	n := fmt.Sprint(len(plans))
	if perr != nil {
		n = "any"
	}
	fmt.Fprintf(e.stderr, "ferry: warning: %v; %s guarded rollout(s) will NOT be halted or advanced, and rollout decisions (admin API, dashboard) fail\n", err, n)
}

// serveTLS returns the TLS configuration from --tls-cert/--tls-key or
// --self-signed; exactly one of them must be given. With --self-signed it
// also returns the CA, which is written (if new) only once listening.
func serveTLS(fl serveFlags) (*tls.Config, *server.CA, error) {
	switch {
	case fl.selfSigned != "" && (fl.tlsCert != "" || fl.tlsKey != ""):
		return nil, nil, errors.New("use either --self-signed or --tls-cert/--tls-key, not both")
	case fl.selfSigned != "":
		host, _, err := net.SplitHostPort(fl.addr)
		if err != nil {
			return nil, nil, fmt.Errorf("bad --addr %q: %w", fl.addr, err)
		}
		var hosts []string
		if host != "" {
			hosts = append(hosts, host)
		}
		return selfSignedCA(hosts, fl.selfSigned)
	case fl.tlsCert != "" && fl.tlsKey != "":
		cfg, err := loadTLS(fl.tlsCert, fl.tlsKey)
		return cfg, nil, err
	}
	return nil, nil, withHint(errors.New("no TLS certificate: ferry serves HTTPS only"),
		"pass --tls-cert FILE --tls-key FILE, or --self-signed CAFILE for a generated CA (testing)")
}

// startRefresher re-signs timestamp, and snapshot when due, on a schedule
// in the background, with the online keys in DIR/keys alone, when their
// passphrase is available without a prompt. Offline roles that are due are
// named in a warning; the server never opens an offline key.
func (e *env) startRefresher(ctx context.Context, fl serveFlags, ko repo.Options) error {
	if fl.refresh <= 0 {
		return nil
	}
	e.warnOfflineKeysHere(fl.dir)
	if fl.pass.file == "" && e.getenv(envPassphrase) == "" && len(fl.online) == 0 {
		fmt.Fprintln(e.stderr, "ferry: note: no passphrase given; metadata is not re-signed automatically (run ferry repo refresh --online-only before it expires)")
		return nil
	}
	r, err := repo.OpenWith(fl.dir, ko)
	if err != nil {
		return err
	}
	t := time.NewTicker(fl.refresh)
	go func() {
		defer t.Stop()
		refreshLoop(ctx, r, t.C, time.Now, e.stderr, nil)
	}()
	return nil
}

// serveKeys says where the server's online keys are: signers given by
// --online-key (opened once, checked against root, shared by the refresher
// and the admin API), else the key files in DIR/keys, opened with the
// passphrase when one is available without a prompt.
func (e *env) serveKeys(ctx context.Context, fl serveFlags) (repo.Options, error) {
	pass := func(string) ([]byte, error) {
		return nil, withHint(errNoPassphrase, "set "+envPassphrase+" or pass --passphrase-file FILE to serve, or hold the online keys in a KMS or HSM (--online-key)")
	}
	if fl.pass.file != "" || e.getenv(envPassphrase) != "" {
		pass = e.passphraseFunc(fl.pass)
	}
	online, err := e.onlineSigners(ctx, fl.dir, keyFlags{online: fl.online}, pass)
	if err != nil {
		return repo.Options{}, err
	}
	return repo.Options{Passphrase: pass, Signers: online}, nil
}

// adminAPI is the admin API handler of serve: it publishes uploads into the
// repository, signing snapshot and timestamp with the online keys of ko.
// Its rollout decisions go through the guard of guarded rollouts, which
// signs with the same repository and under the same lock.
func (e *env) adminAPI(fl serveFlags, ko repo.Options, st store.Store, m *server.Metrics) (http.Handler, *server.Guard, error) {
	r, err := repo.OpenWith(fl.dir, ko)
	if err != nil {
		return nil, nil, err
	}
	tmp := filepath.Join(fl.dir, ".uploads")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, nil, fmt.Errorf("admin api: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, nil))
	g, err := server.NewGuard(server.GuardConfig{Repo: r, Store: st, Tick: fl.guardTick, Metrics: m, Logger: log})
	if err != nil {
		return nil, nil, withHint(err, fmt.Sprintf("pass --guard-tick between 1s and %v", server.MaxGuardTick))
	}
	h, err := server.Admin(server.AdminConfig{
		Repo:      r,
		Tokens:    filepath.Join(fl.dir, server.TokensFile),
		TempDir:   tmp,
		MaxUpload: fl.maxUpload,
		Guard:     g,
		Logger:    log,
	})
	return h, g, err
}

// refreshLoop refreshes r with its online keys now and on every tick until
// ctx ends, writing errors and warnings about due offline roles to w;
// after, if set, is called after each refresh (tests wait on it).
func refreshLoop(ctx context.Context, r *repo.Repo, tick <-chan time.Time, now func() time.Time, w io.Writer, after func()) {
	for {
		res, err := r.RefreshWith(ctx, repo.RefreshOptions{OnlineOnly: true})
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(w, "ferry: error: scheduled refresh: %v\n", err)
		}
		warnDue(w, res.Due, now())
		if after != nil {
			after()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// warnOfflineKeysHere warns when the served repository still holds offline
// keys (the old layout): whoever takes the server could sign with them.
func (e *env) warnOfflineKeysHere(dir string) {
	names, err := repo.OfflineKeyFiles(dir)
	if err != nil || len(names) == 0 {
		return
	}
	fmt.Fprintf(e.stderr, "ferry: warning: %s holds offline keys (%s); a server taken over could sign releases with them: move them with ferry repo split-keys --repo %s --offline-keys DIR\n",
		filepath.Join(dir, "keys"), strings.Join(names, ", "), dir)
}

// serveLimits documents the server's connection and response bounds in
// serve --help, from the values server.Run uses.
var serveLimits = fmt.Sprintf(`

Limits: at most %d connections are served at once (one more is closed as soon as it is
accepted); a response may stall for at most %v, and must reach its client at %d KiB/s on
average after that grace (a 100 MiB file may take %v), so slow readers cannot hold
connections for ever. Request headers must arrive within %v.`,
	server.DefaultMaxConns, server.DefaultWriteTimeout, server.DefaultMinWriteRate>>10,
	server.DefaultWriteTimeout+time.Duration(100<<20/server.DefaultMinWriteRate)*time.Second, server.DefaultReadHeaderTimeout)
