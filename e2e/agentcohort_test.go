package e2e_test

import (
	"testing"

	"github.com/ferry-updates/ferry/rollout"
)

// TestAgentStatusCohortHeld: ferry agent status names the rollout cohort
// of an installation the newest release is held from (not in its share):
// the release, the installation's bucket for its salt, and the share.
func TestAgentStatusCohortHeld(t *testing.T) {
	t.Parallel()
	s := newFleetSite(t, "hello")
	m := s.agent("a", "")
	m.once()
	s.publishLocal("hello", "1.1.0", "--percent", "0")
	m.once()
	expect(t, "at 0%", map[*machine]map[string]string{m: {"hello": "1.0.0"}})
	want := rollout.Bucket(m.installID(), s.salt("hello", "1.1.0"))
	if c := m.status().app("hello").Cohort; c == nil || c.Version != "1.1.0" || c.Bucket != want || c.BasisPoints != 0 {
		t.Errorf("ferry agent status for hello held at 0%%: cohort %+v, want 1.1.0, bucket %d, 0 basis points", c, want)
	}
}
