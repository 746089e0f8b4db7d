package trust_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ferry-updates/ferry/trust"
)

func TestTopLevelPaths(t *testing.T) {
	e := newEnv(t)
	if _, err := e.client().TopLevelPaths(); !errors.Is(err, trust.ErrNotRefreshed) {
		t.Fatalf("before a refresh: %v, want ErrNotRefreshed", err)
	}
	e.repo.Delegate("targets", "world", []string{"world/*/*/*"}, true)
	e.repo.Delegate("targets", "hello", []string{"hello/*/*/*", "hello-docs/*"}, true)
	e.repo.Delegate("hello", "nested", []string{"nested/*"}, true) // not top-level
	e.repo.AddTarget("targets", "top/1.0.0/linux-amd64/top", []byte("x"), nil)
	e.repo.Publish()
	c := e.refreshed()
	got, err := c.TopLevelPaths()
	want := []string{"hello-docs/*", "hello/*/*/*", "top/1.0.0/linux-amd64/top", "world/*/*/*"}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("TopLevelPaths = %v, %v; want %v", got, err, want)
	}
	if e.repo.Fetches("1.hello.json") != 0 {
		t.Error("TopLevelPaths fetched a delegated role")
	}
}
