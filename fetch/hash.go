package fetch

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"slices"
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
