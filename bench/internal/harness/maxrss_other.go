//go:build !linux

package harness

import "os"

// maxRSS is unknown outside Linux (the benchmarks measure on Linux; this
// keeps the package building everywhere).
func maxRSS(*os.ProcessState) int64 { return 0 }
