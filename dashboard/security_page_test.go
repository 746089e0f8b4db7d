package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/store"
)

// TestSecurityPageNewestFirst_R65: the security page lists the newest
// events by the server's receive time, at most securityPerInstall of each
// installation (review 9 F5: it listed the oldest 500 by the
// installations' own clocks). One installation's 500 events, dated just
// inside the window by its clock and received after the real one, do not
// hide another installation's signature failure received a minute ago;
// nor do 500 events an installation received a week ago dates as newest.
func TestSecurityPageNewestFirst_R65(t *testing.T) {
	f := newFixture(t, nil)
	f.enroll("hello", "1.0.0", "victim-install", "noisy-install", "liar-install")
	now := f.clock.Now()
	f.report("victim-install", 1, store.Event{Received: now.Add(-time.Minute), Event: event.Event{Time: now.Add(-time.Minute),
		Kind: event.SecurityKinds()[0], App: "hello", Version: "1.1.0", Cause: "REAL-ATTACK-EVIDENCE"}})
	var flood []store.Event
	for i := range 500 {
		flood = append(flood, store.Event{Received: now.Add(-30 * time.Second), Event: event.Event{
			Time: now.Add(-7*24*time.Hour + time.Minute + time.Duration(i)*time.Millisecond),
			Kind: event.SecurityKinds()[0], App: "hello", Version: "1.1.0", Cause: "noise"}})
	}
	f.report("noisy-install", 1, flood...)
	// Received more than a week ago, dated now by its clock: out of range.
	var old []store.Event
	for range 500 {
		old = append(old, store.Event{Received: now.Add(-8 * 24 * time.Hour), Event: event.Event{Time: now,
			Kind: event.SecurityKinds()[0], App: "hello", Version: "1.1.0", Cause: "STALE-BUT-DATED-NOW"}})
	}
	f.report("liar-install", 1, old...)
	b, _ := f.signedIn()
	page := b.get(Prefix + "security")
	if !strings.Contains(page.body, "REAL-ATTACK-EVIDENCE") {
		t.Fatal("the security page does not show the failure received a minute ago")
	}
	if strings.Contains(page.body, "STALE-BUT-DATED-NOW") {
		t.Error("the page shows events received eight days ago because the installation dates them now")
	}
	if n := strings.Count(page.body, ">noise<"); n != securityPerInstall {
		t.Errorf("%d events of the noisy installation on the page, want its cap of %d", n, securityPerInstall)
	}
	if !strings.Contains(page.body, "at most 50 of each installation") || !strings.Contains(page.body, ">50+<") {
		t.Error("the page does not say the noisy installation's events were cut")
	}
	// The noisy installation's own page shows its newest, up to the limit.
	page = b.get(Prefix + "security?install=noisy-install")
	if n := strings.Count(page.body, ">noise<"); n != securityLimit {
		t.Errorf("%d events on the noisy installation's own page, want %d", n, securityLimit)
	}
}

// TestOverviewSecurityByReceived_R65: the overview's count of the last
// day's security events is by the server's receive time, as the security
// page it links to: two events received an hour ago that their
// installation dates three days back count, and one received two days ago
// that it dates now does not.
func TestOverviewSecurityByReceived_R65(t *testing.T) {
	f := newFixture(t, nil)
	f.enroll("hello", "1.0.0", "back-dated", "forward-dated")
	now := f.clock.Now()
	back := store.Event{Received: now.Add(-time.Hour), Event: event.Event{Time: now.Add(-72 * time.Hour),
		Kind: event.SecurityKinds()[0], App: "hello", Version: "1.1.0", Cause: "recent"}}
	f.report("back-dated", 1, back, back)
	f.report("forward-dated", 1, store.Event{Received: now.Add(-48 * time.Hour), Event: event.Event{Time: now,
		Kind: event.SecurityKinds()[0], App: "hello", Version: "1.1.0", Cause: "old"}})
	b, _ := f.signedIn()
	page := b.get(Prefix)
	i := strings.Index(page.body, `id="card-security"`)
	if i < 0 {
		t.Fatalf("no security card on the overview:\n%s", page.body)
	}
	card := page.body[i:]
	card = card[:strings.Index(card, "</a>")]
	if !strings.Contains(card, `<span class="num">2</span>`) {
		t.Errorf("the overview's security card counts by the installations' clocks: %s", card)
	}
}
