package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/bench/internal/harness"
)

// report collects every dataset's medians and prints them.
type report struct {
	perApp, reps int
	sets         []reportSet
}

type reportSet struct {
	ds     *dataset
	server string
	med    map[string]map[string]harness.Result // case, step
}

func (r *report) add(ds *dataset, res results, server string) {
	s := reportSet{ds: ds, server: server, med: map[string]map[string]harness.Result{}}
	for c, steps := range res {
		s.med[c] = map[string]harness.Result{}
		for step, rs := range steps {
			s.med[c][step] = harness.Median(rs)
		}
	}
	r.sets = append(r.sets, s)
}

var stepNames = map[string]string{"first": "first", "nochange": "no-change"}

func (r *report) write(w io.Writer) error {
	fmt.Fprintf(w, "Targets are spread over applications, %d per app (one delegated role each). "+
		"Medians of %d runs; peak RSS is the child's VmHWM over the step; "+
		"\"vs ferry\" is that row's time divided by ferry's in the same run.\n\n", r.perApp, r.reps)
	t := harness.Table{Header: []string{"targets", "refresh", "client", "time", "vs ferry",
		"fetched", "files (requests)", "allocs", "alloc bytes", "peak RSS"}}
	for _, s := range r.sets {
		for _, step := range []string{"first", "nochange"} {
			base := s.med["ferry"][step]
			for _, c := range cases {
				m := s.med[c.name][step]
				t.Add(row(s.ds.n, stepNames[step], c.name, m, base)...)
			}
			if m, ok := s.med["ferry"][step+"-refresh"]; ok {
				t.Add(row(s.ds.n, stepNames[step], "ferry, Refresh only (no lookup)", m, base)...)
			}
		}
	}
	if err := t.Write(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, s := range r.sets {
		fmt.Fprintf(w, "- %d targets: ferry repository from %s (both layouts generated in %s); flat targets.json %s; app role %s; served by %s",
			s.ds.n, s.ds.via, harness.Dur(s.ds.genTime), harness.Size(s.ds.flatBytes), harness.Size(s.ds.appBytes), s.server)
		if s.ds.targetsMax > 0 {
			fmt.Fprintf(w, "; go-tuf TargetsMaxLength raised from 5,000,000 to %d bytes for (b)", s.ds.targetsMax)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	return r.writeGoals(w)
}

func row(n int, step, name string, m, base harness.Result) []string {
	if m.Err != "" {
		msg := m.Err
		if len(msg) > 120 {
			msg = msg[:120] + "…"
		}
		return []string{fmt.Sprint(n), step, name, "error: " + msg}
	}
	vs := "1.0x"
	if strings.HasPrefix(name, "ferry,") {
		vs = harness.Ratio(m.Nanos, base.Nanos)
	}
	if name != "ferry" && !strings.HasPrefix(name, "ferry,") {
		vs = harness.Ratio(m.Nanos, base.Nanos)
		if base.Err != "" {
			vs = "n/a"
		}
	}
	return []string{fmt.Sprint(n), step, name, harness.Dur(m.Duration()), vs,
		harness.Size(m.Bytes), fmt.Sprintf("%d (%d)", m.Files, m.Requests), harness.Count(m.Allocs),
		harness.Size(int64(m.AllocBytes)), harness.Size(m.PeakRSS)}
}

// writeGoals checks the run against the goals of issue 2.
func (r *report) writeGoals(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Goals, judged on this run:\n\n")
	if s, ok := r.set(100_000); ok {
		f, n := s.med["ferry"]["first"], s.med["ferry"]["nochange"]
		b.WriteString(verdict(f.Err == "" && n.Err == "", "100k targets work",
			fmt.Sprintf("first refresh %s, no-change %s", errOr(f), errOr(n))))
	}
	var lo, hi *reportSet
	for i := range r.sets {
		s := &r.sets[i]
		n := s.med["ferry"]["nochange"]
		b.WriteString(verdict(n.Err == "" && n.Files == 1 && n.Bytes < 4096,
			fmt.Sprintf("%d targets: ferry's no-change refresh fetches one small file", s.ds.n),
			fmt.Sprintf("%d file(s) in %d request(s), %s in all", n.Files, n.Requests, harness.Size(n.Bytes))))
		if lo == nil || s.ds.n < lo.ds.n {
			lo = s
		}
		if hi == nil || s.ds.n > hi.ds.n {
			hi = s
		}
	}
	if lo != nil && hi != lo {
		b.WriteString(growth(lo, hi, "nochange", "ferry's no-change refresh + lookup"))
		b.WriteString(growth(lo, hi, "nochange-refresh", "ferry's no-change Refresh alone"))
	}
	if s, ok := r.set(10_000); ok {
		f := s.med["ferry"]["nochange"]
		gb, ga := s.med[cases[2].name]["nochange"], s.med[cases[1].name]["nochange"]
		b.WriteString(verdict(f.Err == "" && gb.Err == "" && gb.Nanos >= 20*f.Nanos,
			"10k targets: no-change refresh >= 20x faster than go-tuf (b)", harness.Ratio(gb.Nanos, f.Nanos)))
		b.WriteString(verdict(f.Err == "" && ga.Err == "" && ga.Nanos > f.Nanos,
			"10k targets: no-change refresh faster than go-tuf (a)", harness.Ratio(ga.Nanos, f.Nanos)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// growth judges whether step's cost grows from the smallest to the largest
// dataset: less than 2x the time, and allocations within 2x plus 64 KiB.
func growth(lo, hi *reportSet, step, what string) string {
	a, z := lo.med["ferry"][step], hi.med["ferry"][step]
	grow := float64(z.Nanos) / float64(max(a.Nanos, 1))
	return verdict(a.Err == "" && z.Err == "" && grow < 2 && z.AllocBytes < 2*a.AllocBytes+64<<10,
		fmt.Sprintf("%s does not grow with N (%d → %d targets)", what, lo.ds.n, hi.ds.n),
		fmt.Sprintf("time %s → %s (%.2fx), allocated %s → %s", harness.Dur(a.Duration()),
			harness.Dur(z.Duration()), grow, harness.Size(int64(a.AllocBytes)), harness.Size(int64(z.AllocBytes))))
}

func (r *report) set(n int) (*reportSet, bool) {
	for i := range r.sets {
		if r.sets[i].ds.n == n {
			return &r.sets[i], true
		}
	}
	return nil, false
}

func verdict(ok bool, goal, evidence string) string {
	v := "NOT MET"
	if ok {
		v = "met"
	}
	return fmt.Sprintf("- %s: **%s** (%s)\n", goal, v, evidence)
}

func errOr(r harness.Result) string {
	if r.Err != "" {
		return "error: " + r.Err
	}
	return harness.Dur(time.Duration(r.Nanos))
}
