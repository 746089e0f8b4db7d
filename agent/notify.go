package agent

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier speaks systemd's notification protocol (sd_notify): one
// datagram of newline-separated VAR=VALUE lines to the unix socket named
// by NOTIFY_SOCKET ("@name" is an abstract socket). The agent sends
// READY=1 once it has started, STATUS=... lines as it works, WATCHDOG=1
// at half of WATCHDOG_USEC while it runs and STOPPING=1 when it shuts
// down. Without NOTIFY_SOCKET (not under systemd with Type=notify) every
// method does nothing. Safe for concurrent use.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // WATCHDOG_USEC, 0 if none
}

// NewNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through
// getenv (os.Getenv if nil). The watchdog is only taken when WATCHDOG_PID
// is unset or this process's id.
func NewNotifier(getenv func(string) string) *Notifier {
	if getenv == nil {
		getenv = os.Getenv
	}
	n := &Notifier{}
	if s := getenv("NOTIFY_SOCKET"); s != "" && (s[0] == '/' || s[0] == '@') {
		// Package net turns a leading @ into the abstract namespace's NUL.
		n.addr = &net.UnixAddr{Name: s, Net: "unixgram"}
	}
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	pid := getenv("WATCHDOG_PID")
	if err == nil && usec > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(usec) * time.Microsecond
	}
	return n
}

// Enabled reports whether a notification socket is configured.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Notify sends the lines as one datagram. Without a socket it does nothing.
func (n *Notifier) Notify(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(strings.Join(lines, "\n")))
	return err
}

// Status sends STATUS=s (one line).
func (n *Notifier) Status(s string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// Watchdog sends WATCHDOG=1 every half WATCHDOG_USEC until ctx is done
// (a failed send is tried again at the next tick). It returns at once when
// systemd asked for no watchdog.
func (n *Notifier) Watchdog(ctx context.Context) {
	if !n.Enabled() || n.watchdog <= 0 {
		return
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		n.Notify("WATCHDOG=1")
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
