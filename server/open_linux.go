package server

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// beneath opens files under the public directory with openat2(2) and
// RESOLVE_BENEATH: the kernel resolves the whole path in one system call
// and refuses any resolution that leaves the directory (an absolute path,
// "..", a symbolic link pointing out, a magic link), as os.Root does in
// several calls (an openat and a close for every directory on the way, and
// four fcntl and an epoll_ctl for every file it opens). The file is
// read, stat'ed and closed through its bare descriptor.
type beneath struct {
	dir   *os.File // the public directory, kept open for its descriptor
	fd    int
	memos memos // memo_linux.go
}

// beneathFlags: O_NONBLOCK so that opening a FIFO planted in the directory
// cannot block (it is then refused as not a regular file); regular files
// ignore it.
const beneathFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK

// newBeneath returns an opener under root's directory, or nil when this
// kernel (or a seccomp filter) does not allow openat2: os.Root serves then.
func newBeneath(root *os.Root) *beneath {
	dir, err := root.Open(".")
	if err != nil {
		return nil
	}
	b := &beneath{dir: dir, fd: int(dir.Fd()), memos: memos{margin: memoMargin, m: map[string]*memo{}}}
	fd, err := b.openat2(".")
	if err != nil {
		dir.Close()
		return nil
	}
	unix.Close(fd)
	return b
}

func (b *beneath) openat2(name string) (int, error) {
	how := unix.OpenHow{Flags: beneathFlags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(b.fd, name, &how)
		// EAGAIN: the kernel saw a concurrent rename and could not
		// be sure the path stayed beneath; try again, a few times.
		if err == unix.EINTR || err == unix.EAGAIN && tries < 4 {
			continue
		}
		return fd, err
	}
}

// open opens name (slash-separated, already checked by servable).
func (b *beneath) open(name string) (servedFile, error) {
	fd, err := b.openat2(name)
	if err != nil {
		return nil, &fs.PathError{Op: "openat2", Path: name, Err: err}
	}
	return &fdFile{fd: fd, name: path.Base(name)}, nil
}

// fdFile is an open regular file used through its bare descriptor: no
// os.File, so no poller registration and no finalizer.
type fdFile struct {
	fd   int
	name string
}

func (f *fdFile) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pread(f.fd, p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, &fs.PathError{Op: "pread", Path: f.name, Err: err}
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

func (f *fdFile) Close() error {
	if f.fd < 0 {
		return errors.New("close " + f.name + ": already closed")
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return err
}

func (f *fdFile) Stat() (fs.FileInfo, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(f.fd, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "fstat", Path: f.name, Err: err}
		}
		return fdInfo{name: f.name, st: st}, nil
	}
}

// fdInfo is the fs.FileInfo of an fstat: the same size, mode type and
// modification time os.File.Stat reports (so ETags do not change).
type fdInfo struct {
	name string
	st   unix.Stat_t
}

func (i fdInfo) Name() string       { return i.name }
func (i fdInfo) Size() int64        { return i.st.Size }
func (i fdInfo) ModTime() time.Time { return time.Unix(i.st.Mtim.Unix()) }
func (i fdInfo) IsDir() bool        { return i.Mode().IsDir() }
func (i fdInfo) Sys() any           { return &i.st }

func (i fdInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.st.Mode & 0o777)
	switch i.st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// openNonblock is passed to os.Root when openat2 is not available.
const openNonblock = unix.O_NONBLOCK
