package faultfs

import (
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"
)

func (m *Mem) OpenTree(dir string) (Tree, error) {
	fi, err := m.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "opentree", Path: dir, Err: syscall.ENOTDIR}
	}
	return memTree{m: m, dir: path.Clean("/" + dir)}, nil
}

// memTree confines names to its directory: names must be fs.ValidPath and
// no component may be a symlink.
type memTree struct {
	m   *Mem
	dir string
}

func (t memTree) resolve(name, what string) (string, error) {
	if !fs.ValidPath(name) || strings.Contains(name, "\\") {
		return "", &fs.PathError{Op: what, Path: name, Err: fs.ErrInvalid}
	}
	p := t.dir
	comps := strings.Split(name, "/")
	for _, c := range comps[:len(comps)-1] {
		if c == "." {
			continue
		}
		p = path.Join(p, c)
		fi, err := t.m.Lstat(p)
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", &fs.PathError{Op: what, Path: name, Err: syscall.ENOTDIR}
		}
	}
	return path.Join(t.dir, name), nil
}

func (t memTree) Mkdir(name string, perm fs.FileMode) error {
	p, err := t.resolve(name, "mkdir")
	if err != nil {
		return err
	}
	return t.m.Mkdir(p, perm)
}

func (t memTree) Create(name string, perm fs.FileMode) (File, error) {
	p, err := t.resolve(name, "create")
	if err != nil {
		return nil, err
	}
	return t.m.Create(p, perm)
}

func (t memTree) SyncDir(name string) error {
	if name == "." {
		return t.m.SyncDir(t.dir)
	}
	p, err := t.resolve(name, "syncdir")
	if err != nil {
		return err
	}
	return t.m.SyncDir(p)
}

func (t memTree) Close() error { return nil }

type info struct {
	name string
	n    *inode
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return int64(len(i.n.data)) }
func (i info) Mode() fs.FileMode  { return i.n.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.n.isDir() }
func (i info) Sys() any           { return nil }

type memFile struct {
	m      *Mem
	n      *inode
	name   string
	off    int64
	w      bool
	closed bool
}

func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.read(f.name, "read"); err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if !f.w || f.closed {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrClosed}
	}
	if err := f.m.op(f.name, "write"); err != nil {
		return 0, err
	}
	end := f.off + int64(len(p))
	if end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[f.off:], p)
	f.off = end
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.op(f.name, "sync"); err != nil {
		return err
	}
	f.n.synced = slices.Clone(f.n.data)
	return nil
}

func (f *memFile) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	return info{name: path.Base(f.name), n: f.n}, nil
}
