package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/fetch"
)

// targetFileName encodes a TUF target path as one local file name: every
// byte outside [A-Za-z0-9_.-~] is %-escaped (so "/" and "\" become %2F and
// %5C), and a leading "." is escaped too, so neither "." nor ".." nor a
// hidden file can come out. The result is always a single local path
// element (THREATS.md R24).
func targetFileName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty target name")
	}
	enc := strings.ReplaceAll(url.QueryEscape(name), "+", "%20")
	if strings.HasPrefix(enc, ".") {
		enc = "%2E" + enc[1:]
	}
	if !filepath.IsLocal(enc) || filepath.Base(enc) != enc || len(enc) > 255 {
		return "", fmt.Errorf("target name %q cannot be stored safely", name)
	}
	return enc, nil
}

// wantOf converts signed target info into what fetch must verify.
func wantOf(tf *metadata.TargetFiles) (fetch.Want, error) {
	w := fetch.Want{Length: tf.Length, Hashes: map[string][]byte{}}
	for alg, h := range tf.Hashes {
		w.Hashes[alg] = h
	}
	if w.Length < 0 || len(w.Hashes) == 0 {
		return w, errors.New("signed target has no length or no hashes")
	}
	return w, nil
}

// matches reports whether the file at p has exactly the wanted length and
// every known hash. A missing file or a mismatch is false, not an error.
func matches(p string, want fetch.Want) (bool, error) {
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Size() != want.Length {
		return false, nil
	}
	err = fetch.VerifyFile(p, want)
	if errors.Is(err, fetch.ErrMismatch) {
		return false, nil
	}
	return err == nil, err
}

// targetURL is where target name is fetched from: baseURL plus the path,
// each segment escaped, with the basename prefixed by a hash of the file
// when the repository uses consistent snapshots. sha256 is preferred,
// otherwise the alphabetically first algorithm, so the choice is stable.
func targetURL(baseURL, name string, want fetch.Want, consistent bool) (string, error) {
	segs := strings.Split(name, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("target name %q has an empty, . or .. segment", name)
		}
	}
	if consistent {
		alg := "sha256"
		if _, ok := want.Hashes[alg]; !ok {
			algs := make([]string, 0, len(want.Hashes))
			for a := range want.Hashes {
				algs = append(algs, a)
			}
			sort.Strings(algs)
			alg = algs[0]
		}
		last := len(segs) - 1
		segs[last] = fmt.Sprintf("%x.%s", want.Hashes[alg], segs[last])
	}
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	return baseURL + strings.Join(segs, "/"), nil
}
