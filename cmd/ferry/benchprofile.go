//go:build ferry_benchprofile

package main

// Built only with -tags ferry_benchprofile (bench/serve/run.sh with
// PROFILE=DIR): the ferry binary that users run has no profiling hook.
// FERRY_BENCH_CPUPROFILE=FILE writes a CPU profile of the whole command,
// from start to exit, so the profile is of the real ferry serve.

import (
	"fmt"
	"os"
	"runtime/pprof"
)

func init() {
	name := os.Getenv("FERRY_BENCH_CPUPROFILE")
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry: error: FERRY_BENCH_CPUPROFILE:", err)
		os.Exit(1)
	}
	atExit = append(atExit, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
}
