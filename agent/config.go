package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

// Config is the agent's configuration file (TOML, see docs/agent.md),
// validated: every field below is usable as it is.
type Config struct {
	File         string        // the file it was read from ("" for Parse of bytes without a name)
	StateDir     string        // state_dir: one installation: the lock, install-id, status, repositories' metadata
	Interval     time.Duration // interval: time between checks (default 1h)
	Jitter       time.Duration // jitter: a random extra delay in [0, jitter) (default interval/10)
	BackoffMax   time.Duration // backoff_max: cap of the delay after failed checks (default 6h, at least interval)
	MaxStaleness time.Duration // max_staleness: no successful refresh for longer is stale, R15 (default 24h)
	Apps         []*App        // [[app]], in file order
}

// App is one managed application ([[app]]).
type App struct {
	Name        string   // name
	URLs        []string // urls: repository base URLs (https), tried in order
	TrustedRoot string   // trusted_root: the root.json this application's repository is trusted with
	CA          string   // ca: PEM file of the CA of the repository's server ("": system roots)
	Channel     string   // channel (default "stable")
	Platform    string   // platform: os/arch (default this machine's)
	Installed   string   // installed: version installed before the agent's first install, while the installer has no record
	Prerelease  bool     // prerelease: offer pre-release versions
	Strategy    string   // install.strategy: "binary" or "slots"
	Target      string   // install.target (binary): the executable to replace
	Root        string   // install.root (slots): ROOT/APP/versions/VERSION and ROOT/APP/current
	Keep        int      // install.keep (slots): versions kept (default 3)
	HealthCmd   []string // health.cmd: argv, no shell
	HealthURL   string   // health.url: must answer 2xx
	Timeout     time.Duration
	Retries     int
	Restart     []string // restart: argv run after a swap and after a rollback
	Window      *Window  // window: nil means installs at any time
}

// Repo identifies the repository of an application: the same URLs and
// trusted root make one repository, refreshed once per cycle whatever the
// number of its applications.
func (a *App) Repo() string {
	return strings.Join(a.URLs, " ") + " root=" + a.TrustedRoot
}

// repoDir is the name of the repository's directory under STATEDIR/repos.
func (a *App) repoDir() string {
	sum := sha256.Sum256([]byte(a.Repo()))
	return hex.EncodeToString(sum[:8])
}

// The file's shape, as TOML decodes it. Durations are strings so that a
// bad one is reported with its key.
type fileConfig struct {
	StateDir     string    `toml:"state_dir"`
	Interval     *duration `toml:"interval"`
	Jitter       *duration `toml:"jitter"`
	BackoffMax   *duration `toml:"backoff_max"`
	MaxStaleness *duration `toml:"max_staleness"`
	Apps         []fileApp `toml:"app"`
}

type fileApp struct {
	Name        string       `toml:"name"`
	URLs        []string     `toml:"urls"`
	TrustedRoot string       `toml:"trusted_root"`
	CA          string       `toml:"ca"`
	Channel     string       `toml:"channel"`
	Platform    string       `toml:"platform"`
	Installed   string       `toml:"installed"`
	Prerelease  bool         `toml:"prerelease"`
	Restart     []string     `toml:"restart"`
	Install     *fileInstall `toml:"install"`
	Health      *fileHealth  `toml:"health"`
	Window      *fileWindow  `toml:"window"`
}

type fileInstall struct {
	Strategy string `toml:"strategy"`
	Target   string `toml:"target"`
	Root     string `toml:"root"`
	Keep     *int   `toml:"keep"`
}

type fileHealth struct {
	Cmd     []string  `toml:"cmd"`
	URL     string    `toml:"url"`
	Timeout *duration `toml:"timeout"`
	Retries int       `toml:"retries"`
}

type fileWindow struct {
	Days     []string `toml:"days"`
	Hours    string   `toml:"hours"`
	TimeZone string   `toml:"time_zone"`
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (for example 90s, 15m, 1h30m)", b)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", b)
	}
	d.Duration = v
	return nil
}

// maxConfigSize bounds the configuration file.
const maxConfigSize = 1 << 20

// ConfigError is a problem in the configuration file, at a line if known.
type ConfigError struct {
	File string
	Line int // 0 if unknown
	Msg  string
}

func (e *ConfigError) Error() string {
	name := e.File
	if name == "" {
		name = "config"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", name, e.Line, e.Msg)
	}
	return name + ": " + e.Msg
}

// Load reads and validates the configuration file. Relative paths in it
// are relative to the file's directory (and made absolute). It checks the file only; files it
// names (roots, CAs, targets) are opened when the agent starts.
func Load(file string) (*Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", file, err)
	}
	if len(b) > maxConfigSize {
		return nil, &ConfigError{File: file, Msg: fmt.Sprintf("larger than %d bytes", maxConfigSize)}
	}
	return Parse(file, b)
}

// Parse validates a configuration given as bytes; name is the file name
// used in errors and to resolve relative paths ("" resolves nothing). It
// refuses unknown keys, with their line.
func Parse(name string, b []byte) (*Config, error) {
	var fc fileConfig
	md, err := toml.Decode(string(b), &fc)
	if err != nil {
		return nil, tomlError(name, err)
	}
	idx := scanKeys(string(b))
	if un := md.Undecoded(); len(un) > 0 {
		k := un[0].String()
		return nil, &ConfigError{File: name, Line: idx.lineOf(k), Msg: fmt.Sprintf("unknown key %q", k)}
	}
	v := validator{file: name, idx: idx, dir: ""}
	if name != "" {
		v.dir = filepath.Dir(name)
		if abs, err := filepath.Abs(v.dir); err == nil {
			v.dir = abs
		}
	}
	c, err := v.config(&fc)
	if c != nil && name != "" {
		if abs, err := filepath.Abs(name); err == nil {
			c.File = abs
		}
	}
	return c, err
}

// tomlError turns the TOML library's error into one line with the file
// and line.
func tomlError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.LastKey != "" {
			msg = fmt.Sprintf("%s: %s", pe.LastKey, msg)
		}
		return &ConfigError{File: name, Line: pe.Position.Line, Msg: msg}
	}
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{File: name, Line: line, Msg: m[2] + ": " + m[3]}
	}
	return &ConfigError{File: name, Msg: msg}
}

// lineRE matches the TOML library's errors of type that are not a
// ParseError: line 6 (last key "app.urls"): incompatible types: ...
var lineRE = regexp.MustCompile(`^line (\d+) \(last key "(.*?)"\): (.*)$`)

// validator checks the decoded file and fills in defaults.
type validator struct {
	file string
	dir  string // relative paths are joined to it
	idx  keyIndex
}

func (v *validator) errf(key string, app int, format string, args ...any) error {
	line := v.idx.lineIn(key, app)
	msg := fmt.Sprintf(format, args...)
	return &ConfigError{File: v.file, Line: line, Msg: msg}
}

func (v *validator) path(p string) string {
	if p == "" || filepath.IsAbs(p) || v.dir == "" {
		return p
	}
	return filepath.Join(v.dir, p)
}

func (v *validator) config(fc *fileConfig) (*Config, error) {
	c := &Config{File: v.file, StateDir: v.path(fc.StateDir), Interval: time.Hour, MaxStaleness: 24 * time.Hour}
	if c.StateDir == "" {
		return nil, v.errf("", -1, "state_dir: required (the agent's state directory, for example /var/lib/ferry-agent)")
	}
	if fc.Interval != nil {
		c.Interval = fc.Interval.Duration
	}
	if c.Interval < time.Second {
		return nil, v.errf("interval", -1, "interval %v: at least 1s", c.Interval)
	}
	c.Jitter = c.Interval / 10
	if fc.Jitter != nil {
		c.Jitter = fc.Jitter.Duration
	}
	if c.Jitter > c.Interval {
		return nil, v.errf("jitter", -1, "jitter %v: at most the interval (%v)", c.Jitter, c.Interval)
	}
	c.BackoffMax = max(6*time.Hour, c.Interval)
	if fc.BackoffMax != nil {
		c.BackoffMax = fc.BackoffMax.Duration
	}
	if c.BackoffMax < c.Interval {
		return nil, v.errf("backoff_max", -1, "backoff_max %v: at least the interval (%v)", c.BackoffMax, c.Interval)
	}
	if fc.MaxStaleness != nil {
		c.MaxStaleness = fc.MaxStaleness.Duration
	}
	if c.MaxStaleness <= c.Interval+c.Jitter {
		return nil, v.errf("max_staleness", -1, "max_staleness %v: must be longer than interval plus jitter (%v), or every agent is stale", c.MaxStaleness, c.Interval+c.Jitter)
	}
	if len(fc.Apps) == 0 {
		return nil, v.errf("", -1, "no [[app]]: the agent has nothing to manage")
	}
	for i := range fc.Apps {
		a, err := v.app(&fc.Apps[i], i)
		if err != nil {
			return nil, err
		}
		c.Apps = append(c.Apps, a)
	}
	return c, v.across(c)
}

func (v *validator) app(fa *fileApp, i int) (*App, error) {
	a := &App{
		Name: fa.Name, URLs: fa.URLs, TrustedRoot: v.path(fa.TrustedRoot), CA: v.path(fa.CA),
		Channel: fa.Channel, Platform: fa.Platform, Installed: fa.Installed, Prerelease: fa.Prerelease,
		Restart: v.argv(fa.Restart),
	}
	bad := func(key, format string, args ...any) error {
		return v.errf("app."+key, i, "app %q: %s: %s", fa.Name, key, fmt.Sprintf(format, args...))
	}
	if err := release.ValidApp(a.Name); err != nil {
		return nil, v.errf("app.name", i, "app %d: name: %v", i+1, err)
	}
	if len(a.URLs) == 0 {
		return nil, bad("urls", "required (the repository's https URL, and mirrors after it)")
	}
	for j, u := range a.URLs {
		if err := fetch.CheckURL(u, false); err != nil {
			return nil, bad("urls", "%q: %v", u, err)
		}
		if strings.ContainsAny(u, "?#") {
			return nil, bad("urls", "%q: query or fragment not allowed", u)
		}
		a.URLs[j] = strings.TrimSuffix(u, "/") + "/"
	}
	if a.TrustedRoot == "" {
		return nil, bad("trusted_root", "required (the root.json to trust; verification cannot be skipped)")
	}
	if a.Channel == "" {
		a.Channel = rollout.DefaultChannel
	}
	if err := release.ValidChannel(a.Channel); err != nil {
		return nil, bad("channel", "%v", err)
	}
	if a.Platform == "" {
		a.Platform = runtime.GOOS + "/" + runtime.GOARCH
	} else if err := release.ValidPlatform(a.Platform); err != nil {
		return nil, bad("platform", "%v", err)
	}
	if a.Installed != "" {
		if err := release.ValidVersion(a.Installed); err != nil {
			return nil, bad("installed", "%v", err)
		}
	}
	if fa.Restart != nil && len(fa.Restart) == 0 {
		return nil, bad("restart", "empty command")
	}
	if err := v.install(a, fa.Install, bad); err != nil {
		return nil, err
	}
	if err := v.health(a, fa.Health, bad); err != nil {
		return nil, err
	}
	if fw := fa.Window; fw != nil {
		w, err := parseWindow(fw.Days, fw.Hours, fw.TimeZone)
		if err != nil {
			return nil, bad("window", "%v", err)
		}
		a.Window = w
	}
	return a, nil
}

type badFunc func(key, format string, args ...any) error

func (v *validator) install(a *App, fi *fileInstall, bad badFunc) error {
	if fi == nil {
		return bad("install", "required: strategy = \"binary\" with target, or strategy = \"slots\" with root")
	}
	a.Strategy, a.Target, a.Root = fi.Strategy, v.path(fi.Target), v.path(fi.Root)
	switch fi.Strategy {
	case "binary":
		if a.Target == "" {
			return bad("install.target", "required with strategy \"binary\" (the executable to replace)")
		}
		if a.Root != "" || fi.Keep != nil {
			return bad("install", "root and keep are for strategy \"slots\"")
		}
	case "slots":
		if a.Root == "" {
			return bad("install.root", "required with strategy \"slots\" (the directory holding APP/versions and APP/current)")
		}
		if a.Target != "" {
			return bad("install.target", "is for strategy \"binary\"")
		}
		a.Keep = 3
		if fi.Keep != nil {
			a.Keep = *fi.Keep
		}
		if a.Keep < 2 {
			return bad("install.keep", "%d: at least 2 (the current and the previous version)", a.Keep)
		}
	case "":
		return bad("install.strategy", "required: \"binary\" or \"slots\"")
	default:
		return bad("install.strategy", "%q: want \"binary\" or \"slots\"", fi.Strategy)
	}
	return nil
}

func (v *validator) health(a *App, fh *fileHealth, bad badFunc) error {
	if fh == nil {
		return nil
	}
	if fh.Cmd != nil && len(fh.Cmd) == 0 {
		return bad("health.cmd", "empty command")
	}
	if len(fh.Cmd) == 0 && fh.URL == "" {
		return bad("health", "needs cmd or url")
	}
	a.HealthCmd, a.HealthURL, a.Retries, a.Timeout = v.argv(fh.Cmd), fh.URL, fh.Retries, 30*time.Second
	if fh.Timeout != nil {
		a.Timeout = fh.Timeout.Duration
	}
	if a.Timeout <= 0 {
		return bad("health.timeout", "must be positive")
	}
	if a.Retries < 0 {
		return bad("health.retries", "%d: not negative", a.Retries)
	}
	if a.HealthURL != "" && !strings.HasPrefix(a.HealthURL, "http://") && !strings.HasPrefix(a.HealthURL, "https://") {
		return bad("health.url", "%q: want an http:// or https:// URL", a.HealthURL)
	}
	return nil
}

// argv resolves a command's program, when it is a relative path (has a
// slash), against the config file's directory; bare names are looked up
// in PATH when they run.
func (v *validator) argv(cmd []string) []string {
	if len(cmd) == 0 || !strings.ContainsRune(cmd[0], '/') {
		return cmd
	}
	out := append([]string(nil), cmd...)
	out[0] = v.path(out[0])
	return out
}

// across checks what involves several applications: unique names and
// targets, one CA per repository.
func (v *validator) across(c *Config) error {
	names := map[string]bool{}
	targets := map[string]string{}
	cas := map[string]*App{}
	for i, a := range c.Apps {
		if names[a.Name] {
			return v.errf("app.name", i, "app %q: configured twice (each [[app]] needs its own name)", a.Name)
		}
		names[a.Name] = true
		if a.Target != "" {
			t := filepath.Clean(a.Target)
			if other, ok := targets[t]; ok {
				return v.errf("app.install.target", i, "app %q: install.target %s is also app %q's", a.Name, a.Target, other)
			}
			targets[t] = a.Name
		}
		if o, ok := cas[a.Repo()]; ok && o.CA != a.CA {
			return v.errf("app.ca", i, "app %q: same repository as app %q but another ca (%q, %q)", a.Name, o.Name, a.CA, o.CA)
		}
		cas[a.Repo()] = a
	}
	return nil
}
