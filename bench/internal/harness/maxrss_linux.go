package harness

import (
	"os"
	"syscall"
)

// maxRSS returns the rusage maxrss of a finished process in bytes (Linux
// reports KiB), or 0 if unknown.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}
