package main

import (
	"fmt"
	"io"

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

func write(w io.Writer, st *setup, reps int, fetchR, clientR, curl harness.Result) error {
	fmt.Fprintf(w, "One %s target over HTTPS on 127.0.0.1; medians of %d runs each, interleaved.\n\n", harness.Size(st.size), reps)
	t := harness.Table{Header: []string{"client", "time", "throughput", "vs curl", "served", "requests", "peak RSS (VmHWM)", "rusage maxrss"}}
	add := func(name string, r harness.Result, rss, maxrss string) {
		t.Add(name, harness.Dur(r.Duration()), throughput(st.size, r), harness.Ratio(r.Nanos, curl.Nanos),
			harness.Size(r.Bytes), fmt.Sprint(r.Requests), rss, maxrss)
	}
	add("ferry fetch.File (to disk, SHA-256 verified)", fetchR, harness.Size(fetchR.PeakRSS), harness.Size(fetchR.Maxrss))
	add("ferry client: New + Check + Download", clientR, harness.Size(clientR.PeakRSS), harness.Size(clientR.Maxrss))
	add("curl --cacert CA -s URL | sha256sum", curl, "not measured", "not measured")
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
