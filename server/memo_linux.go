package server

import (
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Metadata that changes in place (timestamp.json) is remembered after it
// is read, with the open descriptor of the file read, and served from
// memory for as long as an fstatat of its path shows the same file
// unchanged: the same device and inode, size, mode, modification and
// change times. The check costs one system call instead of four, and it
// cannot miss a change:
//   - a file replaced by a rename (how ferry writes timestamp.json) is
//     another inode, and the remembered inode cannot be reused for it
//     because its descriptor is still open;
//   - a file written in place gets a new change time, which no program
//     can set back; a file whose change time is less than memoMargin
//     older than the moment it was opened is not remembered, so that
//     the coarse clock of file times (a few milliseconds) cannot give a
//     later write the same change time.
//
// The one assumption is that the system clock does not step back by more
// than memoMargin between a read and a later in-place write.
const (
	memoMargin = 2 * time.Second
	// maxMemos is how many names are remembered (and descriptors kept
	// open): timestamp.json and the like, and small files (at most
	// maxSmall bytes each, so at most 4 MiB of them).
	maxMemos = 256
)

type memo struct {
	fd  int // keeps the inode alive, so its number is not reused
	st  unix.Stat_t
	mem *inMemory
}

type memos struct {
	margin time.Duration
	hits   atomic.Int64 // for tests
	mu     sync.Mutex
	m      map[string]*memo
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
	var st unix.Stat_t
	for {
		err := unix.Fstatat(b.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil || !sameFile(&st, &m.st) {
			b.forget(name, m)
			return nil, false
		}
		b.memos.hits.Add(1)
		return m.mem, true
	}
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
	m := &memo{fd: ff.fd, st: *st, mem: mem}
	b.memos.mu.Lock()
	old := b.memos.m[name]
	if old == nil && len(b.memos.m) >= maxMemos {
		b.memos.mu.Unlock()
		return
	}
	b.memos.m[name] = m
	ff.fd = -1
	b.memos.mu.Unlock()
	if old != nil {
		unix.Close(old.fd)
	}
}
