package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-updates/ferry/install"
)

// The demo's installed program and its install state.
func (d *demo) target() string { return filepath.Join(d.dir, "bin", "hello") }
func (d *demo) installer() *install.Binary {
	return &install.Binary{
		App:      "hello",
		Target:   d.target(),
		StateDir: filepath.Join(d.dir, "install-state"),
		Health: &install.Health{Cmd: []string{d.target(), "--health"},
			Timeout: 10 * time.Second, Retries: 1, Interval: 50 * time.Millisecond},
	}
}

// selfUpdate installs hello 1.0.0 as a program and updates it in place to
// 1.1.0 with the binary strategy, health check included.
func (d *demo) selfUpdate(ctx context.Context) error {
	d.say("Install hello 1.0.0 as a program, then update it in place, as a self-updating program does.")
	if d.sh == "" {
		d.note("skipped: the sample program is a shell script and this machine has no sh")
		return nil
	}
	b, err := os.ReadFile(filepath.Join(d.dir, "build", "1.0.0", "hello"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(d.target()), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(d.target(), b, 0o755); err != nil {
		return err
	}
	if err := d.runHello(ctx, "1.0.0"); err != nil {
		return err
	}
	c, err := d.newClient("1.0.0")
	if err != nil {
		return err
	}
	out, err := c.Update(ctx, d.installer())
	if err != nil {
		return err
	}
	if !out.Updated() || out.Result.Version != "1.1.0" {
		return fmt.Errorf("want hello updated to 1.1.0, got %+v", out.Result)
	}
	d.note("updated hello 1.0.0 → 1.1.0 (binary at %s):", d.target())
	d.note("the new bytes were hashed again while being copied next to it, checked against the signed")
	d.note("sha256, and renamed over it in one step; the old program is kept for a rollback.")
	d.note("health check: \"hello --health\" exited 0, so 1.1.0 is committed.")
	return d.runHello(ctx, "1.1.0")
}

// badRelease publishes hello 1.2.0, which fails its health check, and
// shows it rolled back to 1.1.0, marked bad and not retried.
func (d *demo) badRelease(ctx context.Context) error {
	d.say("The publisher releases hello 1.2.0, a broken build: it fails its health check.")
	if d.sh == "" {
		d.note("skipped: the sample program is a shell script and this machine has no sh")
		return nil
	}
	r, err := d.openRepo()
	if err != nil {
		return err
	}
	if err := d.publishHello(ctx, r, "1.2.0", `echo "cannot read its configuration" >&2; exit 1`); err != nil {
		return err
	}
	c, err := d.newClient("1.1.0")
	if err != nil {
		return err
	}
	out, err := c.Update(ctx, d.installer())
	if !errors.Is(err, install.ErrRolledBack) || out == nil || out.Result.Version != "1.1.0" {
		return fmt.Errorf("want 1.2.0 rolled back to 1.1.0, got %v", err)
	}
	d.note("hello 1.2.0 %s:", failure(out.Result))
	d.note("rolled back to 1.1.0; 1.2.0 marked bad on this machine.")
	if err := d.runHello(ctx, "1.1.0"); err != nil {
		return err
	}
	c, err = d.newClient("1.1.0")
	if err != nil {
		return err
	}
	out, err = c.Update(ctx, d.installer())
	if err != nil {
		return err
	}
	if out.Release != nil || len(out.Skipped) != 1 || out.Skipped[0].Version != "1.2.0" {
		return fmt.Errorf("want 1.2.0 passed over, got release %v, skipped %v", out.Release, out.Skipped)
	}
	d.note("checking again installs nothing: 1.2.0 is not retried until a newer release appears.")
	return nil
}

// runHello runs the installed program and checks that it is version v.
func (d *demo) runHello(ctx context.Context, v string) error {
	got, err := runScript(ctx, d.target())
	if err != nil {
		return err
	}
	if want := "hello " + v; got != want {
		return fmt.Errorf("%s printed %q, want %q", d.target(), got, want)
	}
	d.note("running %s prints: %s", d.target(), got)
	return nil
}
