package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
)

func (e *env) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and read an installation's tamper-evident audit log",
		Long: `An installation's audit log holds every event of its updates, one JSON line each, chained by
sequence number and SHA-256 so that an edited, deleted, inserted or reordered line is found.
docs/audit.md describes the format and what it proves.`,
		Example: `  ferry audit verify /var/lib/ferry/audit.log
  ferry audit verify /var/lib/ferry/audit.log.2 /var/lib/ferry/audit.log.1 /var/lib/ferry/audit.log
  ferry audit show /var/lib/ferry/audit.log --app hello --since 24h`,
	}
	cmd.AddCommand(e.auditVerifyCmd(), e.auditShowCmd())
	return cmd
}

func (e *env) auditVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check an audit log's chain and name the first bad line",
		Long: `Check every line of the audit log FILE: its format, its sequence number and the hash of the line
before it. Rotated files are checked as one chain when given oldest first (FILE.2 FILE.1 FILE); a
file given alone is checked from the sequence number and hash its first line carries.

On success it prints "N lines, last seq S hash H" and exits 0: S and H are what the installation
reports to the server, which keeps them so that a later rewrite or truncation of the log's tail
(which no chain can show on its own) is caught. Otherwise it names the first line where the chain
breaks, "FILE: line L (seq S): what is wrong", and exits 1.`,
		Example: `  ferry audit verify audit.log
  ferry audit verify audit.log.2 audit.log.1 audit.log   # rotated files, oldest first`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			first := uint64(0)
			n, st, err := readAudit(args, func(r audit.Record) error {
				if first == 0 {
					first = r.Seq
				}
				return nil
			})
			if err != nil {
				return err
			}
			if first > 1 {
				fmt.Fprintf(e.stderr, "ferry: note: %s starts at seq %d: its first line's prev can only be checked with the rotated file before it (%s.1)\n", args[0], first, args[0])
			}
			fmt.Fprintf(e.stdout, "%d lines, last seq %d hash %s\n", n, st.Seq, st.Hash)
			return nil
		},
	}
}

// readAudit verifies files in order as one chain, calling fn (if not nil)
// for each record. It returns the number of lines and the chain's end.
func readAudit(files []string, fn func(audit.Record) error) (int, audit.State, error) {
	st, n := audit.State{}, 0
	for i, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return n, st, err
		}
		st, err = audit.Read(f, st, func(r audit.Record) error {
			n++
			if fn != nil {
				return fn(r)
			}
			return nil
		})
		f.Close()
		var ve *audit.Error
		if errors.As(err, &ve) && ve.Line == 1 && i > 0 {
			return n, st, withHint(fmt.Errorf("%s: %w", name, err), "give rotated files oldest first, with none missing between them: FILE.2 FILE.1 FILE")
		}
		if err != nil {
			return n, st, fmt.Errorf("%s: %w", name, err)
		}
	}
	if st == (audit.State{}) {
		st = audit.Start // no line at all
	}
	return n, st, nil
}

func (e *env) auditShowCmd() *cobra.Command {
	var app, kind, since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show FILE... [--app APP] [--kind KIND] [--since DURATION|TIME] [--json]",
		Short: "Print an audit log's events, one line each, after verifying it",
		Long: `Verify the audit log FILE (rotated files oldest first, as for ferry audit verify) and print its
events, one line each: time (UTC), kind, application, version and cause. Nothing is printed from a
log that does not verify. --app keeps one application's events; --kind keeps one kind
(install.done) or a family of kinds (install); --since keeps events from a time on, given as a
duration before now (24h, 7d) or a time (2026-12-01, 2026-12-01T09:00:00Z).

` + jsonHelp + ` With --json each event is printed as its line of the log.`,
		Example: `  ferry audit show audit.log
  ferry audit show audit.log --app hello --kind install --since 7d
  ferry audit show audit.log.1 audit.log --json --since 2026-12-01`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			if err := checkKind(kind); err != nil {
				return err
			}
			var recs []audit.Record
			_, _, err = readAudit(args, func(r audit.Record) error {
				if (app == "" || r.App == app) && matchKind(string(r.Kind), kind) && !r.Time.Before(from) {
					recs = append(recs, r)
				}
				return nil
			})
			if err != nil {
				return withHint(err, "ferry audit verify names what is wrong; nothing is shown from a log that does not verify")
			}
			return e.printRecords(recs, asJSON)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "only the events of this application")
	cmd.Flags().StringVar(&kind, "kind", "", "only events of this kind (install.done) or family (install)")
	cmd.Flags().StringVar(&since, "since", "", "only events from this time on: a duration before now (24h, 7d) or a time (2026-12-01)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event as its JSON line")
	return cmd
}

// checkKind refuses a --kind that is neither a kind nor a family of kinds,
// naming the families (a typo would otherwise show "no events").
func checkKind(want string) error {
	if want == "" {
		return nil
	}
	var families []string
	for _, k := range event.Kinds() {
		if matchKind(string(k), want) {
			return nil
		}
		f, _, _ := strings.Cut(string(k), ".")
		if !slices.Contains(families, f) {
			families = append(families, f)
		}
	}
	return withHint(fmt.Errorf("unknown --kind %q", want),
		"give a kind (install.done, health.failed, ...) or a family of kinds: "+strings.Join(families, ", "))
}

func matchKind(k, want string) bool {
	return want == "" || k == want || strings.HasPrefix(k, want+".")
}

// parseSince parses --since: "" (the beginning), a duration before now,
// a date or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := parseDayDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad --since %q: want a duration (24h, 7d) or a time (2026-12-01, 2026-12-01T09:00:00Z)", s)
}

func (e *env) printRecords(recs []audit.Record, asJSON bool) error {
	if asJSON {
		for _, r := range recs {
			if err := writeJSONLine(e.stdout, r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(recs) == 0 {
		fmt.Fprintln(e.stdout, "no events")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tAPP\tVERSION\tCAUSE")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), printable(string(r.Kind)),
			printable(r.App), printable(r.Version), printable(r.Cause))
	}
	return tw.Flush()
}

// printable makes a field from the log safe to print on a terminal, in one
// column: control and other non-printing characters (escape sequences, tabs,
// newlines) become "?", and "" becomes "-".
func printable(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}
