package repo

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	clk := newClock()
	r := newTestRepo(t, InitOptions{}, clk)
	f := writeFile(t, "hello", "hello v1")
	if err := r.Publish(context.Background(), Release{App: "hello", Version: "1.0.0", Platform: "linux/amd64"}, []string{f}); err != nil {
		t.Fatal(err)
	}
	s := verifyServed(t, r.dir, clk.t)
	t.Log(len(s.targets), len(s.files))
	es, err := r.List(context.Background())
	t.Log(es, err)
	ks, err := Keys(r.dir)
	t.Log(ks, err)
}
