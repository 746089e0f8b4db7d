package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

// alertsDir holds the example alerting rules and their unit tests.
var alertsDir = filepath.Join("..", "docs", "alerts")

// TestAlertRules runs promtool check rules and promtool test rules on the
// example rules (docs/alerts). promtool comes with Debian's prometheus
// package; .ci/run installs it and sets FERRY_TEST_PROMTOOL=1, which makes
// a missing promtool a failure instead of a skip.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("FERRY_TEST_PROMTOOL") != "" {
			t.Fatal("FERRY_TEST_PROMTOOL is set but promtool is not on PATH")
		}
		t.Skip("promtool is not on PATH (apt-get install prometheus; .ci/run does)")
	}
	for _, args := range [][]string{{"check", "rules", "ferry-rules.yml"}, {"test", "rules", "ferry-rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = alertsDir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertRulesTested: every alert of ferry-rules.yml has a test that
// expects it to fire and one that expects it silent.
func TestAlertRulesTested(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(alertsDir, "ferry-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join(alertsDir, "ferry-rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\S+)$`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) < 4 {
		t.Fatalf("%d alerts in ferry-rules.yml", len(alerts))
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	cases := regexp.MustCompile(`(?m)^\s*alertname: (\S+)\n\s*exp_alerts:(.*)$`).FindAllStringSubmatch(string(tests), -1)
	for _, c := range cases {
		if strings.TrimSpace(c[2]) == "[]" {
			silent[c[1]] = true
		} else {
			firing[c[1]] = true
		}
	}
	for _, a := range alerts {
		if !firing[a[1]] || !silent[a[1]] {
			t.Errorf("alert %s: tested firing %v, silent %v; want both", a[1], firing[a[1]], silent[a[1]])
		}
	}
}

// TestMetricsDocumented: every metric ferry serve exports is in
// docs/metrics.md, and every ferry_ metric the rules use is exported.
func TestMetricsDocumented(t *testing.T) {
	f := newMetricsFixture(t)
	f.m.SetStaleInstallations(func(context.Context) (int, error) { return 0, nil })
	f.m.ObserveEvent("install.done", "hello")
	f.m.ObserveEvent("install.rolled_back", "hello")
	f.m.ObserveEvent("health.failed", "hello")
	f.m.setGuard([]guard.Status{{App: "hello", Version: "1.0.0", State: rollout.Active, Started: 1}}, time.Now())
	f.m.observeGuardAction("hello", rollout.Halt)
	f.m.setGuardCanSign(true)
	if _, err := f.repo.Rollout(context.Background(), "hello", rollout.Action{Kind: rollout.Start, Version: "1.0.0", BasisPoints: 100}); err != nil {
		t.Fatal(err)
	}
	_, s, _ := f.scrape(t, metricsToken)
	var names []string
	for series := range s {
		name, _, _ := strings.Cut(series, "{")
		if strings.HasPrefix(name, "ferry_") && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("metric %s is not documented in docs/metrics.md", n)
		}
	}
	rules, err := os.ReadFile(filepath.Join(alertsDir, "ferry-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range regexp.MustCompile(`ferry_[a-z_]+`).FindAllString(string(rules), -1) {
		if !slices.Contains(names, n) {
			t.Errorf("ferry-rules.yml uses %s, which ferry serve does not export", n)
		}
	}
	if len(names) < 15 {
		t.Errorf("only %d ferry_ metrics exported: %v", len(names), names)
	}
}
