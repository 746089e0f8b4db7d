//go:build unix

package e2e_test

import "syscall"

var sigterm = syscall.SIGTERM

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
