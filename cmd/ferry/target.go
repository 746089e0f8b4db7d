package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/fetch"
	"github.com/ferry-updates/ferry/internal/safename"
)

// targetFileName is the local file name of target name in a target
// directory: internal/safename's encoding, the one ferry uses for every
// name from signed metadata (THREATS.md R24).
func targetFileName(name string) (string, error) {
	enc, err := safename.File(name, "")
	if err != nil {
		return "", fmt.Errorf("target name %q cannot be stored safely: %w", name, err)
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
