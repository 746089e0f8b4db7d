package fetch

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// knownHashes are the algorithms File checks. Both are collision resistant;
// an algorithm not listed here is ignored, so a weak one can never be the
// only check.
var knownHashes = map[string]func() hash.Hash{
	"sha256": sha256.New,
	"sha512": sha512.New,
}

type digest struct {
	alg  string
	want []byte
	h    hash.Hash
}

// newHashes returns a digest for every known algorithm in want, in a fixed
// order, and fails when there is none or a digest has the wrong size.
func newHashes(want map[string][]byte) ([]*digest, error) {
	var ds []*digest
	var names []string
	for alg, sum := range want {
		names = append(names, alg)
		mk, ok := knownHashes[alg]
		if !ok {
			continue
		}
		h := mk()
		if len(sum) != h.Size() {
			return nil, fmt.Errorf("%s digest has %d bytes, want %d", alg, len(sum), h.Size())
		}
		ds = append(ds, &digest{alg: alg, want: sum, h: h})
	}
	if len(ds) == 0 {
		slices.Sort(names)
		return nil, fmt.Errorf("no supported hash algorithm (sha256, sha512) among [%s]", strings.Join(names, ", "))
	}
	slices.SortFunc(ds, func(a, b *digest) int { return strings.Compare(a.alg, b.alg) })
	return ds, nil
}

func hashWriter(ds []*digest) io.Writer {
	ws := make([]io.Writer, len(ds))
	for i, d := range ds {
		ws[i] = d.h
	}
	return io.MultiWriter(ws...)
}

// checkHashes returns a *MismatchError for the first digest that differs.
func checkHashes(ds []*digest) error {
	for _, d := range ds {
		if got := d.h.Sum(nil); !bytes.Equal(got, d.want) {
			return hashMismatch(d.alg, d.want, got)
		}
	}
	return nil
}

// Verifier hashes the bytes written to it and checks them against a Want:
// the one length-and-hash check for bytes that are already local (a cached
// download, a copy across file systems). Create it with NewVerifier.
type Verifier struct {
	want Want
	n    int64
	ds   []*digest
	w    io.Writer
}

// NewVerifier fails when want lists no known hash algorithm.
func NewVerifier(want Want) (*Verifier, error) {
	ds, err := newHashes(want.Hashes)
	if err != nil {
		return nil, err
	}
	return &Verifier{want: want, ds: ds, w: hashWriter(ds)}, nil
}

// Write hashes p; it never fails.
func (v *Verifier) Write(p []byte) (int, error) {
	v.n += int64(len(p))
	return v.w.Write(p)
}

// Check returns a *MismatchError (wrapping ErrMismatch) if the bytes
// written differ from want in length or in any known hash.
func (v *Verifier) Check() error {
	if v.n != v.want.Length {
		return &MismatchError{What: "length", Want: strconv.FormatInt(v.want.Length, 10), Got: strconv.FormatInt(v.n, 10)}
	}
	return checkHashes(v.ds)
}

// VerifyFile checks the file at path against want, reading at most one
// byte more than want.Length.
func VerifyFile(path string, want Want) error {
	v, err := NewVerifier(want)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(v, io.LimitReader(f, plusOne(want.Length))); err != nil {
		return err
	}
	return v.Check()
}
