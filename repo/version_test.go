package repo

import (
	"math"
	"testing"
)

// No role version overflows or follows a negative one, and no snapshot or
// timestamp entry is made for a version below 1 (R25: huge ints).
func TestVersionBounds_R25(t *testing.T) {
	if v, err := nextVersion("hello", 41); err != nil || v != 42 {
		t.Fatalf("nextVersion(41) = %d, %v", v, err)
	}
	for _, v := range []int64{math.MaxInt64, -1, math.MinInt64} {
		if n, err := nextVersion("hello", v); err == nil {
			t.Errorf("nextVersion(%d) = %d, want an error", v, n)
		}
	}
	for _, v := range []int64{0, -1, math.MinInt64} {
		if _, err := metaFor("hello", v, []byte("{}")); err == nil {
			t.Errorf("metaFor version %d: no error", v)
		}
	}
	m, err := metaFor("hello", 7, []byte("{}"))
	if err != nil || m.Version != 7 || m.Length != 2 {
		t.Fatalf("metaFor(7) = %+v, %v", m, err)
	}
}
