package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// childEnv marks a process started by Run as a child.
const childEnv = "FERRY_BENCH_CHILD"

// resultPrefix starts the stdout lines that carry a child's results.
const resultPrefix = "FERRY-BENCH-RESULT "

// Result is one measured step.
type Result struct {
	Step       string // what was measured, e.g. "first" or "nochange"
	Nanos      int64  // wall time of the step
	Allocs     uint64 // heap objects allocated during the step
	AllocBytes uint64 // heap bytes allocated during the step
	PeakRSS    int64  // bytes: the child's VmHWM over the step (0 if unknown)
	Maxrss     int64  // bytes: rusage maxrss of the whole child (see package doc)
	Bytes      int64  // bytes served by the benchmark server during the step
	Requests   int64  // requests served during the step
	Files      int64  // of which answered 200 or 206 (a file, not an error)
	Err        string // non-empty if the step failed
}

// Duration returns r.Nanos as a time.Duration.
func (r Result) Duration() time.Duration { return time.Duration(r.Nanos) }

// IsChild reports whether this process was started by Run.
func IsChild() bool { return os.Getenv(childEnv) == "1" }

// Run re-executes the running program with args and the child marker in its
// environment, and returns the results the child reported with Report, each
// with the child's rusage Maxrss. The child's stderr is passed through.
func Run(ctx context.Context, args ...string) ([]Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	runErr := cmd.Run()
	results, parseErr := parseResults(out.Bytes())
	if runErr != nil {
		return results, fmt.Errorf("child %v: %w", args, runErr)
	}
	if parseErr != nil {
		return nil, fmt.Errorf("child %v: %w", args, parseErr)
	}
	maxrss := maxRSS(cmd.ProcessState)
	for i := range results {
		results[i].Maxrss = maxrss
	}
	return results, nil
}

func parseResults(out []byte) ([]Result, error) {
	var rs []Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), resultPrefix)
		if !ok {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("parse result %q: %w", line, err)
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("no result reported")
	}
	return rs, nil
}

// Report writes r for the parent to read; call it in the child.
func Report(r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stdout, "%s%s\n", resultPrefix, b)
	return err
}

// Step measures one step in a child: Start it, run the work, Stop it.
type Step struct {
	name  string
	start time.Time
	ms    runtime.MemStats
}

// Start resets the peak-RSS mark and records the allocation counters and
// the time.
func Start(name string) *Step {
	s := &Step{name: name}
	resetPeak()
	runtime.ReadMemStats(&s.ms)
	s.start = time.Now()
	return s
}

// Stop returns the measurement of the step since Start, with err recorded.
func (s *Step) Stop(err error) Result {
	d := time.Since(s.start)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := Result{
		Step:       s.name,
		Nanos:      int64(d),
		Allocs:     ms.Mallocs - s.ms.Mallocs,
		AllocBytes: ms.TotalAlloc - s.ms.TotalAlloc,
		PeakRSS:    peakRSS(),
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// resetPeak sets the kernel's high-water RSS mark to the current RSS
// (Linux 4.0+, "5" in /proc/PID/clear_refs). Errors leave the mark as is.
func resetPeak() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM in bytes, or 0 if unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}
