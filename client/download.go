package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// download fetches rel into dir after verifying length and hashes, under
// c's policy (see Client.Download); it returns the final path and the
// signed release that the file was verified against.
func (c *call) download(ctx context.Context, rel *Release, dir string) (string, *Release, error) {
	if rel == nil {
		return "", nil, errors.New("download: no release")
	}
	if dir == "" {
		return "", nil, fmt.Errorf("download %s: no destination directory", rel.Path)
	}
	signed, err := c.resolve(ctx, rel.Path)
	if err != nil {
		return "", nil, fmt.Errorf("download: %w", err)
	}
	cached, err := c.fetchCached(ctx, signed)
	if err != nil {
		return "", nil, fmt.Errorf("download %s %s: %w", signed.App, signed.Version, err)
	}
	dest, err := place(cached, signed, dir)
	if err != nil {
		return "", nil, fmt.Errorf("download %s %s: %w", signed.App, signed.Version, err)
	}
	return dest, signed, nil
}

// fetchCached returns the download cache file StateDir/downloads/SHA256HEX
// holding rel's verified bytes, reusing a verified complete file, resuming
// a partial one, and trying the mirrors in order.
func (c *call) fetchCached(ctx context.Context, rel *Release) (string, error) {
	sum := hex.EncodeToString(rel.Hashes["sha256"])
	name := filepath.Join(c.r.downloads, sum)
	defer c.r.files.lock(name)() // another application may want the same bytes
	want := fetch.Want{Length: rel.Length, Hashes: rel.Hashes}
	ok, rejected, err := reuse(name, want)
	if rejected != nil {
		c.ev.Emit(event.CacheRejected, rel.Version, rejected.Error(), "target", rel.Path, "file", name)
	}
	if ok {
		c.ev.Emit(event.DownloadDone, rel.Version, "verified copy in the download cache", "target", rel.Path, "sha256", sum, "bytes", strconv.FormatInt(rel.Length, 10))
	}
	if err != nil || ok {
		return name, err
	}
	var errs []error
	for _, m := range c.r.mirrors {
		if err := ctx.Err(); err != nil {
			return "", errors.Join(append(errs, err)...)
		}
		u, err := m.targetURL(rel.Path, rel.Hashes["sha256"])
		if err == nil {
			c.ev.Emit(event.DownloadStarted, rel.Version, "", "target", rel.Path, "mirror", m.shown, "bytes", strconv.FormatInt(rel.Length, 10))
			err = c.fetchFile(ctx, u, name, want)
		}
		if err == nil {
			c.ev.Emit(event.DownloadDone, rel.Version, "", "target", rel.Path, "mirror", m.shown, "sha256", sum, "bytes", strconv.FormatInt(rel.Length, 10))
			return name, nil
		}
		errs = append(errs, &MirrorError{URL: m.shown, Err: err})
		kind := event.MirrorFailed
		if errors.Is(err, fetch.ErrMismatch) || errors.Is(err, fetch.ErrTooLarge) {
			kind = event.DownloadRejected
		}
		c.ev.Emit(kind, rel.Version, err.Error(), "target", rel.Path, "mirror", m.shown)
	}
	return "", errors.Join(errs...)
}

// fetchFile downloads url into name. If a resumed download fails
// verification (fetch.File then removes the file), it starts once more from
// the beginning, so that bad bytes from an earlier attempt or another
// mirror cannot make a good mirror fail.
func (c *call) fetchFile(ctx context.Context, url, name string, want fetch.Want) error {
	var progress fetch.Progress
	if c.a.Progress != nil {
		progress = fetch.Progress(c.a.Progress)
	}
	resumed := exists(name)
	err := c.r.fetcher.File(ctx, url, name, want, progress)
	if err != nil && resumed && !exists(name) && ctx.Err() == nil {
		c.ev.Emit(event.CacheRejected, "", "resumed download failed verification: "+err.Error(), "target", redactURL(url), "file", name)
		err = c.r.fetcher.File(ctx, url, name, want, progress)
	}
	return err
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// reuse inspects a file already in the download cache. It reports true
// only for a complete file whose length and hashes match; a complete or
// longer file that does not match (a poisoned cache), or anything that is
// not a regular file, is removed so it is downloaded again, and the reason
// is returned as rejected; a shorter file is kept for fetch.File to resume
// (which hashes it in full).
func reuse(name string, want fetch.Want) (ok bool, rejected, err error) {
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("download cache: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		rejected = fmt.Errorf("not a regular file: %v", fi.Mode())
	case fi.Size() < want.Length:
		return false, nil, nil
	case fi.Size() > want.Length:
		rejected = fmt.Errorf("length mismatch: want %d bytes, got %d", want.Length, fi.Size())
	default:
		if rejected = fetch.VerifyFile(name, want); rejected == nil {
			return true, nil, nil
		}
	}
	if err := os.RemoveAll(name); err != nil {
		return false, rejected, fmt.Errorf("download cache: removing unverified %s: %w", name, err)
	}
	return false, rejected, nil
}

// place moves the verified cache file into dir, renaming it, or copying it
// (and hashing the copy again) when the rename fails, for example across
// file systems.
func place(cached string, rel *Release, dir string) (string, error) {
	perm := os.FileMode(0o644)
	if rel.Kind == "binary" {
		perm = 0o755
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dest := filepath.Join(dir, path.Base(rel.Path))
	if err := os.Chmod(cached, perm); err != nil {
		return "", err
	}
	rerr := atomicfile.Rename(cached, dest)
	if rerr == nil {
		return dest, nil
	}
	if errors.Is(rerr, atomicfile.ErrNotDurable) {
		// The rename happened; only the directory sync failed.
		return "", fmt.Errorf("move into %s: %w", dir, rerr)
	}
	if err := copyVerified(cached, dest, perm, fetch.Want{Length: rel.Length, Hashes: rel.Hashes}); err != nil {
		return "", fmt.Errorf("move into %s: rename: %v; copy: %w", dir, rerr, err)
	}
	if err := os.Remove(cached); err != nil {
		return "", fmt.Errorf("remove %s: %w", cached, err)
	}
	return dest, nil
}

// copyVerified copies src to dest atomically, hashing the bytes it writes;
// dest is left untouched unless they match want.
func copyVerified(src, dest string, perm os.FileMode, want fetch.Want) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return atomicfile.Write(dest, perm, func(w io.Writer) error {
		v, err := fetch.NewVerifier(want)
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.MultiWriter(w, v), io.LimitReader(f, want.Length+1)); err != nil {
			return err
		}
		return v.Check()
	})
}
