// Command ferry publishes, serves and installs signed software updates.
//
// The command is a thin layer over ferry's libraries: it parses flags,
// reads passphrases and trust anchors, calls repo, server, client or trust,
// and prints one plain line per result. Errors go to stderr as
// "ferry: error: ..." (with "ferry: hint: ..." where one helps) and make the
// process exit with status 1; a command stopped by SIGINT or SIGTERM exits
// with status 130. Progress bars are drawn only on a terminal.
//
// Run "ferry --help" or "ferry demo" to start.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func main() {
	code := Main()
	for _, f := range atExit {
		f()
	}
	os.Exit(code)
}

// atExit runs after Main returns, before the process exits (the
// benchmark build's profiler: benchprofile.go; empty otherwise).
var atExit []func()

// Main runs ferry with the process's arguments and standard streams and
// returns the exit status. SIGINT and SIGTERM cancel the command's context.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
	}
	return e.run(ctx, os.Args[1:])
}

// env is everything a command may touch outside its flags: the standard
// streams and the environment. Tests and "ferry demo" supply their own.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// verbose (-v) shows the libraries' structured events on stderr.
	verbose bool
}

// run executes one command line and returns the exit status.
func (e *env) run(ctx context.Context, args []string) int {
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	if interrupted(ctx, err) {
		if cmd.Name() == "update" || cmd.Name() == "download" {
			fmt.Fprintln(e.stderr, "ferry: interrupted; run again to resume")
		} else {
			fmt.Fprintln(e.stderr, "ferry: interrupted")
		}
		return exitInterrupted
	}
	// One line per message: joined errors (one per mirror, say) are
	// separated by "; " rather than newlines.
	fmt.Fprintf(e.stderr, "ferry: error: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	hint := explain(err)
	var h *hintError
	if errors.As(err, &h) {
		hint = h.hint
	}
	if hint != "" {
		fmt.Fprintf(e.stderr, "ferry: hint: %s\n", hint)
	}
	return 1
}

// hintError attaches a suggestion for the user to an error.
type hintError struct {
	err  error
	hint string
}

func (h *hintError) Error() string { return h.err.Error() }
func (h *hintError) Unwrap() error { return h.err }

// withHint returns err carrying hint, or nil if err is nil.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// isTerminal reports whether w is a terminal (progress bars and prompts are
// only used there).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

const rootExamples = `  # See the whole loop on this machine (temporary directory, a few seconds):
  ferry demo

  # Publisher: create a repository (offline keys kept out of it) and publish a release
  ferry init ./repo --offline-keys ./offline-keys
  ferry release publish --repo ./repo --offline-keys ./offline-keys --app hello --version 1.0.0 --platform linux/amd64 ./hello
  ferry release list --repo ./repo

  # Operator: serve it over HTTPS with a generated CA
  ferry serve --repo ./repo --addr 127.0.0.1:8443 --self-signed ./ca.pem --addr-file ./url.txt &

  # CI: publish through the server's admin API with the application's key only
  (umask 077 && ferry token create --repo ./repo --app hello > hello.token)   # on the server
  ferry release publish --server https://127.0.0.1:8443/ --ca ./ca.pem --token-file hello.token \
      --app-key ./offline-keys/apps/hello.age --app hello --version 1.1.0 --platform linux/amd64 ./hello

  # Staged rollout: a release to 5% of the installations, then 50%; halt it, or pull it
  ferry rollout start --repo ./repo --app hello --version 1.1.0 --percent 5
  ferry rollout start --repo ./repo --app hello --version 1.1.0 --percent 50
  ferry rollout halt --repo ./repo --app hello --version 1.1.0
  ferry rollout pull --repo ./repo --app hello --version 1.1.0
  ferry rollout status --repo ./repo --app hello
  ferry release promote --repo ./repo --app hello --version 1.2.0 --to stable   # from a channel such as beta
  ferry release min-version --repo ./repo --offline-keys ./offline-keys --app hello 1.0.0

  # Root holders: change root (here: a new timestamp key) through a k-of-n ceremony
  ferry key rotate --repo ./repo --role timestamp --out ./rotate.json
  ferry root sign --key ./offline-keys/root-1.age ./rotate.json   # each holder, with their own key
  ferry root publish --repo ./repo ./rotate.json

  # Client: check, download and verify
  ferry update --repo https://127.0.0.1:8443/ --root ./repo/root.json --ca ./ca.pem \
      --app hello --current 1.0.0 --out ./bin

  # Client: ... and install it over ./bin/hello, rolled back if its health check fails
  ferry update --repo https://127.0.0.1:8443/ --root ./repo/root.json --ca ./ca.pem \
      --app hello --install binary --target ./bin/hello --health-cmd "./bin/hello --version"

  # Scripts: one JSON object per result; -v shows the library's events on stderr
  ferry release list --repo ./repo --json
  ferry update -v --json --repo https://127.0.0.1:8443/ --root ./repo/root.json --ca ./ca.pem \
      --app hello --current 1.0.0 --out ./bin

  # Version and shell completion
  ferry version
  source <(ferry completion bash)`

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Publish, serve and install signed software updates (TUF)",
		Example:       rootExamples,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().BoolVarP(&e.verbose, "verbose", "v", false, "show the structured events of the update libraries (slog) on stderr")
	root.AddCommand(
		e.agentCmd(),
		e.auditCmd(),
		e.dashboardCmd(),
		e.initCmd(),
		e.installationCmd(),
		e.keyCmd(),
		e.releaseCmd(),
		e.rolloutCmd(),
		e.repoCmd(),
		e.rootCeremonyCmd(),
		e.targetsCeremonyCmd(),
		e.serveCmd(),
		e.tokenCmd(),
		e.updateCmd(),
		e.tufCmd(),
		e.demoCmd(),
		e.versionCmd(),
	)
	requireSubcommand(root)
	return root
}

// requireSubcommand makes every command group (a command with
// subcommands and no action of its own) fail on a missing or unknown
// subcommand, instead of printing help and exiting 0.
func requireSubcommand(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		requireSubcommand(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() || cmd.Parent() == nil {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return withHint(fmt.Errorf("%s needs a subcommand", c.CommandPath()), "run "+c.CommandPath()+" --help")
		}
		return unknownSubcommand(c, args[0])
	}
	// A mistyped subcommand followed by its flags (ferry token lst --repo
	// DIR) reaches the group with flags it does not have: the word before
	// them is what is wrong, not the flag.
	// Its subcommands inherit this function: only the group's own
	// positional words are a subcommand's name.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if args := c.Flags().Args(); c == cmd && len(args) > 0 {
			return unknownSubcommand(c, args[0])
		}
		return err
	})
}

// unknownSubcommand is the error for a word that names none of group's
// subcommands, with the closest ones and the list of them.
func unknownSubcommand(group *cobra.Command, typed string) error {
	var names []string
	for _, sub := range group.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	hint := group.CommandPath() + " has " + strings.Join(names, ", ") + " (run " + group.CommandPath() + " --help)"
	if group.SuggestionsMinimumDistance <= 0 {
		group.SuggestionsMinimumDistance = 2 // cobra's own, which it sets on the root only
	}
	if near := group.SuggestionsFor(typed); len(near) > 0 {
		hint = "did you mean " + group.CommandPath() + " " + strings.Join(near, " or ") + "? " + hint
	}
	return withHint(fmt.Errorf("unknown command %q for %s", typed, group.CommandPath()), hint)
}
