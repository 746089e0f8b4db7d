package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// signInPoster posts the sign-in form straight to the handler, from any
// client address and with any context (a client that hung up).
func signInPoster(t *testing.T, f *fixture) func(ctx context.Context, addr, password string) *httptest.ResponseRecorder {
	b := f.browser()
	page := b.get(Prefix + "login")
	csrf := csrfOf(t, page.body)
	u, _ := url.Parse(f.srv.URL + Prefix)
	var nonce string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == loginCookie {
			nonce = c.Value
		}
	}
	return func(ctx context.Context, addr, password string) *httptest.ResponseRecorder {
		form := url.Values{"csrf": {csrf}, "password": {password}}.Encode()
		r := httptest.NewRequestWithContext(ctx, "POST", "https://dash"+Prefix+"login", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: loginCookie, Value: nonce})
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w
	}
}

// returnsWhileHeld runs the requests and reports whether they all
// returned while the verification slot is held (the bound is a guard
// against a hang, not a measure of speed).
func returnsWhileHeld(n int, run func(i int)) bool {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); run(i) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(30 * time.Second):
		return false
	}
}

// TestSignInAbandonedDoesNotWait_R67: a sign-in whose client has gone
// does not wait for the verification slot (review 9 F4: 40 guesses from
// 8 addresses whose clients had hung up still each took their turn, and
// the administrator's sign-in waited behind them): while the slot is
// held they all return without a verification, and the administrator's
// sign-in is the next one verified.
func TestSignInAbandonedDoesNotWait_R67(t *testing.T) {
	f := newFixture(t, nil)
	d := f.h.(*dash)
	post := signInPoster(t, f)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	d.verify <- struct{}{} // a verification in progress
	codes := make([]int, 40)
	ok := returnsWhileHeld(40, func(i int) {
		codes[i] = post(gone, fmt.Sprintf("[2001:db8:%x::1]:1", i/5), "guess").Code
	})
	<-d.verify
	if !ok {
		t.Fatal("sign-ins whose clients had gone were still waiting for the verification slot")
	}
	for i, c := range codes {
		if c == http.StatusSeeOther || c == http.StatusUnauthorized {
			t.Fatalf("abandoned sign-in %d was verified: %d", i, c)
		}
	}
	if w := post(context.Background(), "192.0.2.1:1", testPassword); w.Code != http.StatusSeeOther {
		t.Fatalf("the administrator's sign-in after them: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(f.logs.String(), "sign-in abandoned") {
		t.Errorf("abandoned sign-ins not logged:\n%s", f.logs)
	}
}

// TestSignInQueueBounded_R67: at most MaxSignInQueue sign-ins wait for the
// verification slot; one more, from yet another address, is refused at
// once with 429 and Retry-After, and once the queue drains a sign-in
// passes again.
func TestSignInQueueBounded_R67(t *testing.T) {
	f := newFixture(t, nil)
	d := f.h.(*dash)
	post := signInPoster(t, f)
	d.verify <- struct{}{} // a verification in progress
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range MaxSignInQueue {
		wg.Add(1)
		go func() { defer wg.Done(); post(ctx, fmt.Sprintf("198.51.100.%d:1", i+1), "guess") }()
	}
	for len(d.waiting) < MaxSignInQueue {
		time.Sleep(time.Millisecond)
	}
	var w *httptest.ResponseRecorder
	if !returnsWhileHeld(1, func(int) { w = post(context.Background(), "203.0.113.9:1", testPassword) }) {
		cancel()
		<-d.verify
		t.Fatalf("a sign-in past a full queue of %d waited", MaxSignInQueue)
	}
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a sign-in past a full queue of %d: %d (Retry-After %q), want 429 with Retry-After", MaxSignInQueue, w.Code, w.Header().Get("Retry-After"))
	}
	cancel()
	wg.Wait()
	<-d.verify
	if w := post(context.Background(), "203.0.113.9:1", testPassword); w.Code != http.StatusSeeOther {
		t.Fatalf("a sign-in once the queue drained: %d %s", w.Code, w.Body)
	}
}

// TestSignInKeyIPv6Prefix_R67: the sign-in limit counts an IPv6 /64 as
// one address, so its many addresses share one burst.
func TestSignInKeyIPv6Prefix_R67(t *testing.T) {
	f := newFixture(t, nil)
	post := signInPoster(t, f)
	for i := range DefaultSignInRate.Burst {
		if w := post(context.Background(), fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1), "guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	if w := post(context.Background(), "[2001:db8:1:2:ffff::7]:1", testPassword); w.Code != http.StatusTooManyRequests {
		t.Fatalf("another address of the same /64 past its burst: %d, want 429", w.Code)
	}
	if w := post(context.Background(), "[2001:db8:1:3::1]:1", testPassword); w.Code != http.StatusSeeOther {
		t.Fatalf("another /64: %d, want the sign-in", w.Code)
	}
	if w := post(context.Background(), "192.0.2.1:1", "guess"); w.Code != http.StatusUnauthorized {
		t.Fatalf("an IPv4 address: %d", w.Code)
	}
}
