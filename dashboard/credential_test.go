package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/store"
)

// TestCredentialRoundTrip: a credential verifies its password and no
// other, survives its text form, and its text holds no password.
func TestCredentialRoundTrip(t *testing.T) {
	c, err := HashPassword([]byte(testPassword), testParams)
	if err != nil {
		t.Fatal(err)
	}
	line := c.String()
	if !strings.HasPrefix(line, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(line, testPassword) {
		t.Fatalf("credential %q", line)
	}
	back, err := ParseCredential([]byte(line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !back.Verify([]byte(testPassword)) {
		t.Fatal("the parsed credential refuses its password")
	}
	for _, wrong := range []string{"", "correct horse battery stapl", testPassword + " ", strings.ToUpper(testPassword)} {
		if back.Verify([]byte(wrong)) {
			t.Errorf("the credential accepts %q", wrong)
		}
	}
	again, _ := HashPassword([]byte(testPassword), testParams)
	if again.String() == line {
		t.Error("two credentials of one password are equal: the salt is not random")
	}
	if _, err := HashPassword([]byte("short"), testParams); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("a 5-character password: %v", err)
	}
	if (Credential{}).Verify(nil) {
		t.Error("the zero credential accepts the empty password")
	}
}

// TestParseCredentialRefuses: anything but an argon2id v19 line with
// parameters in bounds is refused with an error that says what is wanted,
// so a credential file cannot make every sign-in cost gigabytes.
func TestParseCredentialRefuses(t *testing.T) {
	good, _ := HashPassword([]byte(testPassword), testParams)
	parts := strings.Split(good.String(), "$")
	salt, hash := parts[4], parts[5]
	for _, bad := range []string{
		"",
		testPassword,
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + hash,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + hash, // 4 GiB
		"$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1,p=255$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + hash,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=64,t=1,p=1$$" + hash,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + hash + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + hash + "==",
	} {
		if _, err := ParseCredential([]byte(bad)); err == nil {
			t.Errorf("ParseCredential(%q) accepted", bad)
		} else if strings.Contains(err.Error(), testPassword) {
			t.Errorf("the error quotes the input: %v", err)
		}
	}
}

// TestChartRunningTotals: the chart's lines are running totals per
// version, newest version first, and its scale holds the largest total.
func TestChartRunningTotals(t *testing.T) {
	since := t0
	counts := installCountFixtures{{"1.0.0", 0, 3}, {"1.1.0", 30, 2}, {"1.0.0", 59, 1}, {"1.1.0", 60, 99}}
	c := newChart(counts.counts(since), since, chartSteps*60e9, chartSteps)
	if len(c.Series) != 2 || c.Series[0].Version != "1.1.0" || c.Series[0].Total != 2 || c.Series[1].Total != 4 {
		t.Fatalf("series %+v", c.Series)
	}
	if c.Total != 6 || c.Empty || c.YTicks[len(c.YTicks)-1].Label != "4" {
		t.Fatalf("total %d, empty %v, top tick %+v", c.Total, c.Empty, c.YTicks[len(c.YTicks)-1])
	}
	// 1.0.0: 3 in the first interval, then flat, then 1 more in the last.
	want := "48,212 48,212 57,62 579,62 588,12 588,12" // x = 48+9i, y = 212-50n
	if c.Series[1].Points != want {
		t.Errorf("1.0.0 points %q, want %q", c.Series[1].Points, want)
	}
	if e := newChart(nil, since, chartSteps*60e9, chartSteps); !e.Empty || len(e.Series) != 0 {
		t.Errorf("empty chart %+v", e)
	}
}

type installCountFixture struct {
	version string
	step    int
	n       int
}

type installCountFixtures []installCountFixture

func (fs installCountFixtures) counts(since time.Time) []store.InstallCount {
	var out []store.InstallCount
	for _, f := range fs {
		out = append(out, store.InstallCount{Version: f.version, Start: since.Add(time.Duration(f.step) * time.Minute), Installs: f.n})
	}
	return out
}
