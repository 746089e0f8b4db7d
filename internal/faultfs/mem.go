package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// ErrCrashed is returned by every operation on a Mem after its simulated
// power loss, until Reboot.
var ErrCrashed = errors.New("simulated power loss")

// Mem is an in-memory file system with fault injection and a crash mode.
// Names are slash-separated; relative names are taken from "/".
type Mem struct {
	mu      sync.Mutex
	root    *inode
	ops     int
	failAt  int
	failErr error
	crashAt int
	crashed bool
	tmp     int
	locks   map[string]bool
}

type inode struct {
	mode   fs.FileMode
	data   []byte // regular file: current content
	synced []byte // regular file: content as of the last fsync
	target string // symlink
	kids   map[string]*inode
	skids  map[string]*inode // directory: entries as of the last fsync
}

func (n *inode) isDir() bool { return n.mode.IsDir() }

// NewMem returns an empty file system whose root directory is durable.
func NewMem() *Mem {
	root := &inode{mode: fs.ModeDir | 0o755, kids: map[string]*inode{}, skids: map[string]*inode{}}
	return &Mem{root: root, locks: map[string]bool{}}
}

// Ops reports how many mutating operations have been attempted so far.
func (m *Mem) Ops() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ops
}

// FailAt makes the nth mutating operation (counted from the start, see Ops)
// fail with err, once.
func (m *Mem) FailAt(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failAt, m.failErr = n, err
}

// CrashAt simulates power loss at the nth mutating operation: it and every
// later operation fail with ErrCrashed until Reboot.
func (m *Mem) CrashAt(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashAt = n
}

// Crashed reports whether the simulated power loss has happened.
func (m *Mem) Crashed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// Reboot drops every write and directory change that was never fsynced,
// releases all locks and clears pending faults.
func (m *Mem) Reboot() {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[*inode]bool{}
	var restore func(n *inode)
	restore = func(n *inode) {
		if seen[n] {
			return
		}
		seen[n] = true
		switch {
		case n.isDir():
			n.kids = maps.Clone(n.skids)
			for _, k := range n.kids {
				restore(k)
			}
		case n.mode.IsRegular():
			n.data = slices.Clone(n.synced)
		}
	}
	restore(m.root)
	m.crashed, m.crashAt, m.failAt, m.failErr = false, 0, 0, nil
	m.locks = map[string]bool{}
}

// op accounts for one mutating operation; m.mu must be held.
func (m *Mem) op(name, what string) error {
	if m.crashed {
		return &fs.PathError{Op: what, Path: name, Err: ErrCrashed}
	}
	m.ops++
	if m.crashAt > 0 && m.ops >= m.crashAt {
		m.crashed = true
		return &fs.PathError{Op: what, Path: name, Err: ErrCrashed}
	}
	if m.failAt == m.ops {
		return &fs.PathError{Op: what, Path: name, Err: m.failErr}
	}
	return nil
}

// read checks that a non-mutating operation may run; m.mu must be held.
func (m *Mem) read(name, what string) error {
	if m.crashed {
		return &fs.PathError{Op: what, Path: name, Err: ErrCrashed}
	}
	return nil
}

func split(p string) []string {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// lookup resolves name, following symlinks in every component but the last
// (and in the last one too if follow). It returns the parent directory, the
// last component and its inode (nil if it does not exist).
func (m *Mem) lookup(name string, follow bool) (parent *inode, base string, n *inode, err error) {
	comps := split(name)
	stack := []*inode{m.root}
	hops := 0
	if len(comps) == 0 {
		return nil, "/", m.root, nil
	}
	for i := 0; i < len(comps); i++ {
		c, last := comps[i], i == len(comps)-1
		top := stack[len(stack)-1]
		switch c {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		k := top.kids[c]
		if k != nil && k.mode&fs.ModeSymlink != 0 && (!last || follow) {
			if hops++; hops > 40 {
				return nil, "", nil, syscall.ELOOP
			}
			rest := append(strings.Split(k.target, "/"), comps[i+1:]...)
			if strings.HasPrefix(k.target, "/") {
				stack = stack[:1]
			}
			comps, i = slices.DeleteFunc(rest, func(s string) bool { return s == "" }), -1
			if len(comps) == 0 {
				return nil, "", stack[len(stack)-1], nil
			}
			continue
		}
		if last {
			return top, c, k, nil
		}
		if k == nil {
			return nil, "", nil, syscall.ENOENT
		}
		if !k.isDir() {
			return nil, "", nil, syscall.ENOTDIR
		}
		stack = append(stack, k)
	}
	// The path ended in "." or "..": the directory itself.
	return nil, "", stack[len(stack)-1], nil
}

// entry resolves name for a mutation of its parent directory.
func (m *Mem) entry(name, what string) (*inode, string, *inode, error) {
	parent, base, n, err := m.lookup(name, false)
	if err == nil && parent == nil {
		err = syscall.EINVAL
	}
	if err != nil {
		return nil, "", nil, &fs.PathError{Op: what, Path: name, Err: err}
	}
	return parent, base, n, nil
}

func (m *Mem) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.read(name, "open"); err != nil {
		return nil, err
	}
	_, _, n, err := m.lookup(name, true)
	if err == nil && n == nil {
		err = syscall.ENOENT
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &memFile{m: m, n: n, name: name}, nil
}

func (m *Mem) Create(name string, perm fs.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.op(name, "create"); err != nil {
		return nil, err
	}
	parent, base, n, err := m.entry(name, "create")
	if err != nil {
		return nil, err
	}
	if n != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: syscall.EEXIST}
	}
	n = &inode{mode: perm.Perm()}
	parent.kids[base] = n
	return &memFile{m: m, n: n, name: name, w: true}, nil
}

func (m *Mem) Mkdir(name string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mkdir(name, perm)
}

func (m *Mem) mkdir(name string, perm fs.FileMode) error {
	if err := m.op(name, "mkdir"); err != nil {
		return err
	}
	parent, base, n, err := m.entry(name, "mkdir")
	if err != nil {
		return err
	}
	if n != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.EEXIST}
	}
	parent.kids[base] = &inode{mode: fs.ModeDir | perm.Perm(), kids: map[string]*inode{}, skids: map[string]*inode{}}
	return nil
}

func (m *Mem) MkdirAll(name string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := "/"
	for _, c := range split(name) {
		p = path.Join(p, c)
		_, _, n, err := m.lookup(p, true)
		if err != nil {
			return &fs.PathError{Op: "mkdir", Path: p, Err: err}
		}
		if n == nil {
			if err := m.mkdir(p, perm); err != nil {
				return err
			}
		} else if !n.isDir() {
			return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
		}
	}
	return nil
}

func (m *Mem) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.op(oldname, "rename"); err != nil {
		return err
	}
	op, ob, n, err := m.entry(oldname, "rename")
	if err == nil && n == nil {
		err = &fs.PathError{Op: "rename", Path: oldname, Err: syscall.ENOENT}
	}
	if err != nil {
		return err
	}
	np, nb, old, err := m.entry(newname, "rename")
	if err != nil {
		return err
	}
	if old != nil && old.isDir() && (!n.isDir() || len(old.kids) > 0) {
		return &fs.PathError{Op: "rename", Path: newname, Err: syscall.EEXIST}
	}
	delete(op.kids, ob)
	np.kids[nb] = n
	return nil
}

func (m *Mem) Link(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.op(newname, "link"); err != nil {
		return err
	}
	_, _, n, err := m.entry(oldname, "link")
	if err == nil && (n == nil || !n.mode.IsRegular()) {
		err = &fs.PathError{Op: "link", Path: oldname, Err: syscall.EPERM}
	}
	if err != nil {
		return err
	}
	np, nb, old, err := m.entry(newname, "link")
	if err != nil {
		return err
	}
	if old != nil {
		return &fs.PathError{Op: "link", Path: newname, Err: syscall.EEXIST}
	}
	np.kids[nb] = n
	return nil
}

func (m *Mem) Symlink(target, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.op(name, "symlink"); err != nil {
		return err
	}
	parent, base, n, err := m.entry(name, "symlink")
	if err != nil {
		return err
	}
	if n != nil {
		return &fs.PathError{Op: "symlink", Path: name, Err: syscall.EEXIST}
	}
	parent.kids[base] = &inode{mode: fs.ModeSymlink | 0o777, target: target}
	return nil
}

func (m *Mem) Readlink(name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.read(name, "readlink"); err != nil {
		return "", err
	}
	_, _, n, err := m.entry(name, "readlink")
	if err == nil && (n == nil || n.mode&fs.ModeSymlink == 0) {
		err = &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
		if n == nil {
			err = &fs.PathError{Op: "readlink", Path: name, Err: syscall.ENOENT}
		}
	}
	if err != nil {
		return "", err
	}
	return n.target, nil
}

func (m *Mem) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.op(name, "remove"); err != nil {
		return err
	}
	parent, base, n, err := m.entry(name, "remove")
	if err == nil && n == nil {
		err = &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOENT}
	}
	if err != nil {
		return err
	}
	if n.isDir() && len(n.kids) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	delete(parent.kids, base)
	return nil
}

func (m *Mem) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.op(name, "removeall"); err != nil {
		return err
	}
	parent, base, n, err := m.lookup(name, false)
	if err != nil || n == nil {
		return nil
	}
	if parent == nil {
		return &fs.PathError{Op: "removeall", Path: name, Err: syscall.EINVAL}
	}
	delete(parent.kids, base)
	return nil
}

func (m *Mem) Lstat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.read(name, "lstat"); err != nil {
		return nil, err
	}
	_, base, n, err := m.lookup(name, false)
	if err == nil && n == nil {
		err = syscall.ENOENT
	}
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return info{name: path.Base("/" + base), n: n}, nil
}

func (m *Mem) ReadDir(name string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.read(name, "readdir"); err != nil {
		return nil, err
	}
	_, _, n, err := m.lookup(name, true)
	if err == nil && (n == nil || !n.isDir()) {
		err = syscall.ENOTDIR
		if n == nil {
			err = syscall.ENOENT
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	var out []fs.DirEntry
	for _, k := range slices.Sorted(maps.Keys(n.kids)) {
		out = append(out, fs.FileInfoToDirEntry(info{name: k, n: n.kids[k]}))
	}
	return out, nil
}

func (m *Mem) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.op(dir, "syncdir"); err != nil {
		return err
	}
	_, _, n, err := m.lookup(dir, true)
	if err == nil && (n == nil || !n.isDir()) {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: err}
	}
	n.skids = maps.Clone(n.kids)
	return nil
}

// WriteFile follows the same steps as internal/atomicfile, each one a
// separate operation that can fail or crash.
func (m *Mem) WriteFile(name string, data []byte, perm fs.FileMode) (err error) {
	m.mu.Lock()
	m.tmp++
	tmp := path.Join(path.Dir(name), fmt.Sprintf(".%s.tmp-%d", path.Base(name), m.tmp))
	m.mu.Unlock()
	f, err := m.Create(tmp, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			m.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err = m.Rename(tmp, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if serr := m.SyncDir(path.Dir(name)); serr != nil {
		// As atomicfile: the new bytes are in place, maybe not durable.
		return fmt.Errorf("write %s: %w: %w", name, atomicfile.ErrNotDurable, serr)
	}
	return nil
}

func (m *Mem) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.read(name, "lock"); err != nil {
		return nil, err
	}
	key := path.Clean("/" + name)
	if m.locks[key] {
		return nil, fmt.Errorf("lock %s: %w", name, ErrLocked)
	}
	m.locks[key] = true
	return closerFunc(func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.locks, key)
		return nil
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
