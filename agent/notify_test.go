package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notifySocket is a fake systemd: a unixgram socket in a temporary
// directory that collects the datagrams it gets.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	// A short directory: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return listenNotify(t, filepath.Join(dir, "notify"))
}

func listenNotify(t *testing.T, name string) (string, <-chan string) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return name, msgs
}

func waitMsg(t *testing.T, msgs <-chan string, want string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			for _, line := range strings.Split(m, "\n") {
				if strings.HasPrefix(line, want) {
					return m
				}
			}
		case <-deadline:
			t.Fatalf("no %q notification", want)
		}
	}
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestNotifier(t *testing.T) {
	sock, msgs := notifySocket(t)
	n := NewNotifier(env(map[string]string{"NOTIFY_SOCKET": sock}))
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	if err := n.Notify("READY=1", "STATUS=started"); err != nil {
		t.Fatal(err)
	}
	if m := waitMsg(t, msgs, "READY=1"); m != "READY=1\nSTATUS=started" {
		t.Errorf("datagram %q", m)
	}
	n.Status("two\nlines")
	if m := waitMsg(t, msgs, "STATUS="); m != "STATUS=two lines" {
		t.Errorf("status datagram %q, want one line", m)
	}
	if runtime.GOOS == "linux" {
		abs, amsgs := listenNotify(t, fmt.Sprintf("@ferry-agent-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
		NewNotifier(env(map[string]string{"NOTIFY_SOCKET": abs})).Notify("READY=1")
		waitMsg(t, amsgs, "READY=1")
	}
	// Not under systemd: nothing is sent and nothing fails.
	off := NewNotifier(env(nil))
	if off.Enabled() || off.Notify("READY=1") != nil {
		t.Error("a notifier without NOTIFY_SOCKET must do nothing")
	}
	if NewNotifier(env(map[string]string{"NOTIFY_SOCKET": "relative/path"})).Enabled() {
		t.Error("a relative NOTIFY_SOCKET is not a socket systemd gives")
	}
}

func TestNotifierWatchdog(t *testing.T) {
	sock, msgs := notifySocket(t)
	n := NewNotifier(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "40000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Watchdog(ctx); close(done) }()
	for range 3 { // every 20 ms
		waitMsg(t, msgs, "WATCHDOG=1")
	}
	cancel()
	<-done
	other := NewNotifier(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "40000", "WATCHDOG_PID": "1"}))
	if other.watchdog != 0 {
		t.Error("a watchdog meant for another process was taken")
	}
}

// TestRunNotifies: READY=1 once started, STATUS= after a cycle,
// STOPPING=1 on shutdown.
func TestRunNotifies(t *testing.T) {
	sock, msgs := notifySocket(t)
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", ""))
	opts := e.options()
	opts.Notifier = NewNotifier(env(map[string]string{"NOTIFY_SOCKET": sock}))
	a := e.agent(t, c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitMsg(t, msgs, "READY=1")
	if m := waitMsg(t, msgs, "STATUS=hello up-to-date"); !strings.Contains(m, "next check") {
		t.Errorf("status %q", m)
	}
	cancel()
	waitMsg(t, msgs, "STOPPING=1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
