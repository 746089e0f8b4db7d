package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ferry-updates/ferry/bench/internal/harness"
)

// rssGoal is the bound on the client's peak RSS.
const rssGoal = 64 << 20

func throughput(size int64, r harness.Result) string {
	if r.Nanos == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB/s", float64(size)/(1<<20)/r.Duration().Seconds())
}

// runs lists the times of rs in run order.
func runs(rs []harness.Result) string {
	var ts []string
	for _, r := range rs {
		ts = append(ts, harness.Dur(r.Duration()))
	}
	return strings.Join(ts, ", ")
}

func write(w io.Writer, st *setup, reps int, all map[string][]harness.Result) error {
	fetchR, clientR, curl := harness.Median(all["fetch"]), harness.Median(all["client"]), harness.Median(all["curl"])
	fmt.Fprintf(w, "One %s target over HTTPS on 127.0.0.1; medians of %d runs each, interleaved in rotating order.\n\n", harness.Size(st.size), reps)
	t := harness.Table{Header: []string{"client", "time", "throughput", "vs curl", "served", "requests",
		"peak RSS (VmHWM)", "rusage maxrss", "every run"}}
	add := func(name string, r harness.Result, rss, maxrss string, rs []harness.Result) {
		t.Add(name, harness.Dur(r.Duration()), throughput(st.size, r), harness.Ratio(r.Nanos, curl.Nanos),
			harness.Size(r.Bytes), fmt.Sprint(r.Requests), rss, maxrss, runs(rs))
	}
	add("ferry fetch.File (to disk, SHA-256 verified)", fetchR, harness.Size(fetchR.PeakRSS), harness.Size(fetchR.Maxrss), all["fetch"])
	add("ferry client: New + Check + Download", clientR, harness.Size(clientR.PeakRSS), harness.Size(clientR.Maxrss), all["client"])
	add("curl --cacert CA -s URL | sha256sum", curl, "not measured", "not measured", all["curl"])
	if err := t.Write(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nGoals, judged on this run:\n\n")
	for _, c := range []struct {
		name string
		r    harness.Result
	}{{"fetch.File", fetchR}, {"client", clientR}} {
		fmt.Fprintf(w, "- %s at least as fast as curl | sha256sum: **%s** (%s of the pipeline's time)\n",
			c.name, metOr(c.r.Nanos <= curl.Nanos), harness.Ratio(c.r.Nanos, curl.Nanos))
		fmt.Fprintf(w, "- %s peak RSS under 64 MiB: **%s** (%s)\n",
			c.name, metOr(c.r.PeakRSS > 0 && c.r.PeakRSS < rssGoal), harness.Size(c.r.PeakRSS))
	}
	fmt.Fprintf(w, "\nPeak RSS is the child's own VmHWM. rusage maxrss (os.ProcessState.SysUsage) also counts the parent's "+
		"high-water mark, which Linux folds into a child started with CLONE_VM|CLONE_VFORK, so it is an upper bound.\n")
	return nil
}

func metOr(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}
