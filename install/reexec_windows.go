//go:build windows

package install

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Reexec starts the executable at target (the newly installed version; ""
// means os.Executable) with the same arguments, environment and standard
// streams, waits for it and exits with its exit code: Windows has no exec.
// It returns only if the new process could not be started.
func Reexec(target string) error {
	if target == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("reexec: %w", err)
		}
		target = exe
	}
	cmd := exec.Command(target, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("reexec %s: %w", target, err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
	return nil
}
