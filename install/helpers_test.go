package install

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// entry is one archive member for test archives.
type entry struct {
	name string
	body string
	typ  byte // tar type; 0 means a regular file
	mode int64
	link string
}

func tarBytes(t testing.TB, kind string, entries []entry) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		typ, mode := e.typ, e.mode
		if typ == 0 {
			typ = tar.TypeReg
		}
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return compress(t, kind, raw.Bytes())
}

func compress(t testing.TB, kind string, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	switch kind {
	case KindTarGz:
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
	case KindTarZst:
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(b)
		zw.Close()
	default:
		t.Fatalf("compress: kind %q", kind)
	}
	return out.Bytes()
}

func zipBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := os.FileMode(e.mode)
		if mode == 0 {
			mode = 0o644
		}
		switch e.typ {
		case tar.TypeSymlink:
			mode |= os.ModeSymlink
		case tar.TypeDir:
			mode |= os.ModeDir
		case tar.TypeChar:
			mode |= os.ModeDevice | os.ModeCharDevice
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		body := e.body
		if e.typ == tar.TypeSymlink {
			body = e.link
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func archive(t testing.TB, kind string, entries []entry) []byte {
	if kind == KindZip {
		return zipBytes(t, entries)
	}
	return tarBytes(t, kind, entries)
}

// artifact writes body to dir and describes it with its true hash.
func artifact(t testing.TB, dir, app, version, kind string, body []byte) Artifact {
	t.Helper()
	sum := sha256.Sum256(body)
	file := filepath.Join(dir, app+"-"+version+"."+kind)
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return Artifact{File: file, Length: int64(len(body)), Hashes: map[string][]byte{"sha256": sum[:]},
		App: app, Version: version, Kind: kind}
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// script is a tiny executable that prints its version and exits with code.
func script(version string, code int) []byte {
	return []byte("#!/bin/sh\necho " + version + "\nexit " + string(rune('0'+code)) + "\n")
}
