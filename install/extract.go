package install

import (
	"archive/tar"
	"archive/zip"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ferry-updates/ferry/internal/faultfs"
	"github.com/klauspost/compress/zstd"
)

// Limits bound what one archive may unpack to. The zero value means the
// defaults, which are also the maximum a zero field can mean: limits are
// never off.
type Limits struct {
	MaxBytes int64 // total bytes of all files; default 4 GiB
	MaxFiles int   // files plus directories; default 100,000
	// MaxRatio bounds total bytes to MaxRatio times the archive's length
	// (but at least 1 MiB); default 200.
	MaxRatio int64
}

func (l Limits) budget(size int64) (bytes int64, files int) {
	bytes, files, ratio := l.MaxBytes, l.MaxFiles, l.MaxRatio
	if bytes <= 0 {
		bytes = 4 << 30
	}
	if files <= 0 {
		files = 100_000
	}
	if ratio <= 0 {
		ratio = 200
	}
	if byRatio := max(size*ratio, 1<<20); byRatio < bytes {
		bytes = byRatio
	}
	return bytes, files
}

// ArchiveError names the archive entry that was refused.
type ArchiveError struct {
	Entry  string
	Reason string
}

func (e *ArchiveError) Error() string {
	return fmt.Sprintf("unsafe archive: entry %q: %s", e.Entry, e.Reason)
}

func (e *ArchiveError) Unwrap() error { return ErrUnsafeArchive }

// Bounds on one entry name: directories nested deeper, or longer names,
// would let a tiny archive create many inodes or exhaust path limits.
const (
	maxDepth   = 64
	maxNameLen = 1024
)

// entryName checks an archive entry name and returns it cleaned of a
// leading "./" and a trailing "/" ("" for the archive's root directory).
// Only plain relative slash paths are accepted: no "..", no absolute or
// volume paths, no backslashes, colons or NULs, nothing that is not local
// on this OS (such as NUL or COM1 on Windows).
func entryName(name string) (string, error) {
	n := strings.TrimSuffix(name, "/")
	for strings.HasPrefix(n, "./") {
		n = n[2:]
	}
	if n == "" || n == "." {
		return "", nil
	}
	if strings.ContainsAny(n, "\\:\x00") || !fs.ValidPath(n) || !filepath.IsLocal(filepath.FromSlash(n)) {
		return "", &ArchiveError{Entry: name, Reason: "not a plain relative path"}
	}
	if len(n) > maxNameLen {
		return "", &ArchiveError{Entry: name, Reason: fmt.Sprintf("name longer than %d bytes", maxNameLen)}
	}
	if d := strings.Count(n, "/") + 1; d > maxDepth {
		return "", &ArchiveError{Entry: name, Reason: fmt.Sprintf("%d levels deep, more than %d", d, maxDepth)}
	}
	return n, nil
}

// extractor writes entries into a Tree within the limits.
type extractor struct {
	ctx   context.Context
	tree  faultfs.Tree
	bytes int64 // remaining byte budget
	files int   // remaining entry budget
	dirs  map[string]bool
	order []string // directories in creation order
	fp    func(string)
	buf   []byte
	sync  *syncer
}

// syncer fsyncs and closes extracted files on a few goroutines while
// extraction goes on: the disk sees many fsyncs at once and can commit them
// together, instead of one journal commit per file.
type syncer struct {
	ch  chan faultfs.File
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func newSyncer(workers int) *syncer {
	s := &syncer{ch: make(chan faultfs.File, 64)}
	for range workers {
		s.wg.Go(func() {
			for f := range s.ch {
				err := f.Sync()
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					s.mu.Lock()
					s.err = cmp.Or(s.err, err)
					s.mu.Unlock()
				}
			}
		})
	}
	return s
}

// wait returns once every file handed over is synced and closed.
func (s *syncer) wait() error {
	close(s.ch)
	s.wg.Wait()
	return s.err
}

// extract unpacks the archive r (size bytes, already verified against its
// signed hashes) of the given kind into tree. Only regular files and
// directories are allowed: symlinks, hard links, devices and FIFOs make the
// whole artifact fail (R41).
//
// dirs holds the directories that exist in tree (nil: none yet); extract
// adds the ones it creates, so several artifacts of one release can share
// directories while a file in two of them is still a duplicate.
func extract(ctx context.Context, tree faultfs.Tree, r io.ReaderAt, size int64, kind string, lim Limits, dirs map[string]bool, fp func(string)) error {
	b, f := lim.budget(size)
	if dirs == nil {
		dirs = map[string]bool{}
	}
	dirs[""] = true
	x := &extractor{ctx: ctx, tree: tree, bytes: b, files: f, dirs: dirs, fp: fp,
		buf: make([]byte, 256<<10), sync: newSyncer(8)}
	var err error
	switch kind {
	case KindZip:
		err = x.zip(r, size)
	case KindTarGz, KindTarZst:
		err = x.tarball(io.NewSectionReader(r, 0, size), kind)
	default:
		err = fmt.Errorf("unknown artifact kind %q", kind)
	}
	if serr := x.sync.wait(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	for i := len(x.order) - 1; i >= 0; i-- {
		if err := tree.SyncDir(x.order[i]); err != nil {
			return err
		}
	}
	return tree.SyncDir(".")
}

func (x *extractor) tarball(r io.Reader, kind string) error {
	var dec io.Reader
	if kind == KindTarGz {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		dec = gz
	} else {
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		dec = zr
	}
	tr := tar.NewReader(dec)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, tar.ErrInsecurePath) {
			return &ArchiveError{Entry: h.Name, Reason: "insecure path"}
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		var isDir bool
		switch h.Typeflag {
		case tar.TypeReg: // the reader already turned TypeRegA into TypeReg or TypeDir
		case tar.TypeDir:
			isDir = true
		default:
			return &ArchiveError{Entry: h.Name, Reason: fmt.Sprintf("entry type %q is not allowed (only files and directories)", h.Typeflag)}
		}
		if err := x.entry(h.Name, isDir, h.FileInfo().Mode(), tr); err != nil {
			return err
		}
	}
}

func (x *extractor) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if errors.Is(err, zip.ErrInsecurePath) {
		return &ArchiveError{Entry: "?", Reason: "insecure path"}
	}
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	for _, f := range zr.File {
		mode := f.Mode()
		if !mode.IsDir() && !mode.IsRegular() {
			return &ArchiveError{Entry: f.Name, Reason: fmt.Sprintf("mode %v is not allowed (only files and directories)", mode)}
		}
		if err := x.zipEntry(f); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipEntry(f *zip.File) error {
	if f.Mode().IsDir() {
		return x.entry(f.Name, true, f.Mode(), nil)
	}
	if _, err := entryName(f.Name); err != nil {
		return err // refuse before decompressing anything
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("zip %q: %w", f.Name, err)
	}
	defer rc.Close()
	return x.entry(f.Name, false, f.Mode(), rc)
}

func (x *extractor) entry(raw string, isDir bool, mode fs.FileMode, body io.Reader) error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	name, err := entryName(raw)
	if err != nil {
		return err
	}
	if name == "" {
		if !isDir {
			return &ArchiveError{Entry: raw, Reason: "file named like the root"}
		}
		return nil
	}
	if err := x.mkdirs(raw, path.Dir(name)); err != nil {
		return err
	}
	if isDir && !x.dirs[name] {
		return x.mkdirs(raw, name)
	}
	// A file, or a directory entry that creates nothing: one entry.
	if err := x.take(raw); err != nil || isDir {
		return err
	}
	x.fp("extract")
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	return x.file(raw, name, perm, body)
}

// take counts one entry or created directory against MaxFiles.
func (x *extractor) take(raw string) error {
	if x.files--; x.files < 0 {
		return &ArchiveError{Entry: raw, Reason: "too many entries (files and directories, implicit ones included)"}
	}
	return nil
}

// mkdirs creates dir and its missing parents; every directory it creates,
// implicit parents included, counts against MaxFiles (R41 bombs).
func (x *extractor) mkdirs(raw, dir string) error {
	if dir == "." || x.dirs[dir] {
		return nil
	}
	if err := x.mkdirs(raw, path.Dir(dir)); err != nil {
		return err
	}
	if err := x.take(raw); err != nil {
		return err
	}
	if err := x.tree.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &ArchiveError{Entry: dir, Reason: "directory collides with a file"}
		}
		return err
	}
	x.dirs[dir] = true
	x.order = append(x.order, dir)
	return nil
}

func (x *extractor) file(raw, name string, perm fs.FileMode, body io.Reader) error {
	f, err := x.tree.Create(name, perm)
	if errors.Is(err, fs.ErrExist) {
		return &ArchiveError{Entry: raw, Reason: "duplicate entry"}
	}
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(onlyWriter{f}, io.LimitReader(body, x.bytes+1), x.buf)
	if err == nil && n > x.bytes {
		err = &ArchiveError{Entry: raw, Reason: "archive expands beyond its size limit (bomb?)"}
	}
	x.bytes -= n
	if err != nil {
		f.Close()
		return err
	}
	x.sync.ch <- f
	return nil
}

// onlyWriter hides ReadFrom so that io.CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
