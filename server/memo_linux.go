package server

import (
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Metadata that changes in place (timestamp.json) and small files are
// remembered after they are read, with the open descriptor of the file
// read, and served from memory for as long as a status of their path
// (resolved beneath the public directory, as opening it is) shows the same
// file unchanged: the same device and inode, size, mode, modification and
// change times. The check costs three system calls (openat2 with O_PATH,
// fstat, close) where serving from the file costs four (openat2, fstat,
// pread, close), and it cannot miss a change:
//   - a file replaced by a rename (how ferry writes timestamp.json) is
//     another inode, and the remembered inode cannot be reused for it
//     while its descriptor is open (a remembered file is forgotten, and
//     its descriptor closed, when the check fails);
//   - a file written in place gets a new change time, which no program
//     can set back; a file whose change time is less than memoMargin
//     older than the moment it was opened is not remembered, so that
//     the coarse clock of file times (a few milliseconds) cannot give a
//     later write the same change time, nor a new file on a reused inode
//     the remembered one's.
//
// The one assumption is that the system clock does not step back by more
// than memoMargin between a read and a later in-place write.
const (
	memoMargin = 2 * time.Second
	// Names remembered, each with its descriptor kept open: metadata
	// that changes in place (timestamp.json and the like, at most
	// maxInMemory bytes each) has slots of its own, never taken by
	// other files; small files (at most maxSmall bytes each, so at most
	// 4 MiB in all) share theirs, and a new one evicts one of them when
	// they are full.
	maxChangingMemos = 16
	maxSmallMemos    = 256
)

type memo struct {
	fd    int // keeps the inode alive while remembered
	st    unix.Stat_t
	mem   *inMemory
	small bool // in the small files' slots
}

type memos struct {
	margin time.Duration
	hits   atomic.Int64 // for tests
	mu     sync.Mutex
	m      map[string]*memo
	small  int // how many of m are small files
}

// lookup returns what was remembered for name if the file there is still
// the one read.
func (b *beneath) lookup(name string) (*inMemory, bool) {
	if b == nil {
		return nil, false
	}
	b.memos.mu.Lock()
	m := b.memos.m[name]
	b.memos.mu.Unlock()
	if m == nil {
		return nil, false
	}
	// The path is resolved beneath the public directory as open does
	// (openat2, RESOLVE_BENEATH): a directory on the way moved out and
	// replaced by a symbolic link does not resolve, and a symbolic link
	// in the file's place is itself what is compared (O_NOFOLLOW).
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(b.fd, name, &how)
	for err == unix.EINTR || err == unix.EAGAIN {
		fd, err = unix.Openat2(b.fd, name, &how)
	}
	if err != nil {
		b.forget(name, m)
		return nil, false
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	for err == unix.EINTR {
		err = unix.Fstat(fd, &st)
	}
	unix.Close(fd)
	if err != nil || !sameFile(&st, &m.st) {
		b.forget(name, m)
		return nil, false
	}
	b.memos.hits.Add(1)
	return m.mem, true
}

// forget drops m, found changed or gone, if it is still what name
// remembers, and closes its descriptor: a file removed for good does not
// keep its inode (and a slot) for ever.
func (b *beneath) forget(name string, m *memo) {
	b.memos.mu.Lock()
	if b.memos.m[name] != m {
		b.memos.mu.Unlock()
		return
	}
	delete(b.memos.m, name)
	if m.small {
		b.memos.small--
	}
	b.memos.mu.Unlock()
	unix.Close(m.fd)
}

func sameFile(a, b *unix.Stat_t) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Size == b.Size && a.Mode == b.Mode &&
		a.Mtim == b.Mtim && a.Ctim == b.Ctim
}

// remember keeps mem, read from f (opened at opened, with status fi), for
// name; it takes f's descriptor, so closing f afterwards
// does nothing. A file changed too recently is not remembered.
func (b *beneath) remember(name string, f servedFile, fi fs.FileInfo, opened time.Time, mem *inMemory) {
	ff, ok := f.(*fdFile)
	if b == nil || !ok {
		return
	}
	st, ok := fi.Sys().(*unix.Stat_t)
	if !ok || !time.Unix(st.Ctim.Unix()).Before(opened.Add(-b.memos.margin)) {
		return
	}
	m := &memo{fd: ff.fd, st: *st, mem: mem, small: !mem.changes}
	var evicted *memo
	b.memos.mu.Lock()
	old := b.memos.m[name]
	switch {
	case old != nil:
	case !m.small && len(b.memos.m)-b.memos.small >= maxChangingMemos:
		b.memos.mu.Unlock()
		return
	case m.small && b.memos.small >= maxSmallMemos:
		for k, e := range b.memos.m { // any one of them (map order is random)
			if e.small {
				delete(b.memos.m, k)
				b.memos.small--
				evicted = e
				break
			}
		}
	}
	if old != nil && old.small {
		b.memos.small--
	}
	if m.small {
		b.memos.small++
	}
	b.memos.m[name] = m
	ff.fd = -1
	b.memos.mu.Unlock()
	if old != nil {
		unix.Close(old.fd)
	}
	if evicted != nil {
		unix.Close(evicted.fd)
	}
}
