package main

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version describes this binary from its build information: the module
// version (a tag, a pseudo-version, or "(devel)"), the VCS revision and
// time when the build recorded them, and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "ferry (no build information)"
	}
	v := "ferry " + bi.Main.Version
	if v == "ferry " {
		v = "ferry (devel)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += " " + settings["vcs"] + " " + rev
		if t := settings["vcs.time"]; t != "" {
			v += " " + t
		}
		if settings["vcs.modified"] == "true" {
			v += " (modified)"
		}
	}
	return v + " " + bi.GoVersion
}

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of this ferry binary (from its build information)",
		Example: "  ferry version\n  ferry --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(e.stdout, version())
			return err
		},
	}
}

// logger is the structured logger for the libraries' events: text on
// stderr with -v, none otherwise.
func (e *env) logger() *slog.Logger {
	if !e.verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
