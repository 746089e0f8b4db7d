//go:build !unix

package e2e_test

import (
	"errors"
	"os"
)

var sigterm = os.Interrupt

func mkfifo(string) error { return errors.New("no FIFOs on this system") }
