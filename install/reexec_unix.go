//go:build !windows

package install

import (
	"fmt"
	"os"
	"syscall"
)

// Reexec replaces the running process with the executable at target (the
// newly installed version; "" means os.Executable), with the same
// arguments and environment. On success it does not return.
func Reexec(target string) error {
	if target == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("reexec: %w", err)
		}
		target = exe
	}
	return fmt.Errorf("reexec %s: %w", target, syscall.Exec(target, os.Args, os.Environ()))
}
