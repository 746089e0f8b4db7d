package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

// rolloutPost sends a raw decision body and returns the status and body.
func (f *adminFixture) rolloutPost(t *testing.T, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", f.srv.url+"/api/v1/apps/hello/rollout", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminRolloutAuth_R53: the rollout endpoints answer 401 without a
// token or with an unknown one, 403 with another application's token, and
// 200 with the application's own; refused requests sign nothing.
func TestAdminRolloutAuth_R53(t *testing.T) {
	f := newAdminFixture(t, nil)
	start := `{"action":"start","version":"1.0.0","basis_points":500,"channel":""}`
	before := treeHashes(t, filepath.Join(f.dir, "public"))
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"unknown token", "ferry_" + strings.Repeat("B", 43), http.StatusUnauthorized},
		{"other app's token", f.othr, http.StatusForbidden},
	} {
		if resp := f.do(t, "GET", "/api/v1/apps/hello/rollout", c.token, "", nil); resp.StatusCode != c.want {
			t.Errorf("GET rollout with %s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if code, body := f.rolloutPost(t, c.token, start); code != c.want {
			t.Errorf("POST rollout with %s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	if d := treeDiff(before, treeHashes(t, filepath.Join(f.dir, "public"))); len(d) > 0 {
		t.Fatalf("refused decisions changed what is served: %v", d)
	}
	if code, body := f.rolloutPost(t, f.roll, start); code != http.StatusOK || !strings.Contains(body, `"basis_points":500`) {
		t.Fatalf("POST rollout with hello's token: %d %s, want 200 with the entry", code, body)
	}
	if d := treeDiff(before, treeHashes(t, filepath.Join(f.dir, "public"))); len(d) == 0 {
		t.Fatal("an accepted decision changed nothing that is served")
	}
	if !strings.Contains(f.logs.String(), `"msg":"admin: rollout","app":"hello","action":"start","version":"1.0.0"`) {
		t.Fatalf("the decision is not logged:\n%s", f.logs)
	}
}

// TestAdminRolloutDecisions: start, widen, halt, resume, pull and promote
// through the client, each answered with the new entry; the status lists
// every signed version with its decision and the minimum safe version.
func TestAdminRolloutDecisions(t *testing.T) {
	f := newAdminFixture(t, nil)
	ctx := context.Background()
	c := f.client(t, f.hello)
	if _, err := c.Publish(ctx, "hello", f.signed(t, "1.1.0", "hello 1.1.0")); err != nil {
		t.Fatal(err)
	}
	st, err := c.Rollouts(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Releases) != 2 || st.Releases[0].Version != "1.1.0" || st.Releases[0].Decided ||
		st.Releases[0].BasisPoints != rollout.Full || st.Releases[0].Channel != rollout.DefaultChannel || st.MinVersion != "" {
		t.Fatalf("status before any decision: %+v", st)
	}
	rc := f.client(t, f.roll)
	step := func(a rollout.Action, want rollout.Entry) rollout.Entry {
		t.Helper()
		got, err := rc.Rollout(ctx, "hello", a)
		if err != nil {
			t.Fatalf("%s: %v", a.Kind, err)
		}
		if got.Channel != want.Channel || got.BasisPoints != want.BasisPoints || got.State != want.State || len(got.Salt) != 32 {
			t.Fatalf("%s: %+v, want %+v with a salt", a.Kind, got, want)
		}
		return got
	}
	first := step(rollout.Action{Kind: "start", Version: "1.1.0", BasisPoints: 500}, rollout.Entry{Channel: "stable", BasisPoints: 500, State: rollout.Active})
	wide := step(rollout.Action{Kind: "start", Version: "1.1.0", BasisPoints: 5000}, rollout.Entry{Channel: "stable", BasisPoints: 5000, State: rollout.Active})
	if wide.Salt != first.Salt {
		t.Fatal("widening the share changed the salt: the cohort would not keep who was in")
	}
	step(rollout.Action{Kind: "halt", Version: "1.1.0"}, rollout.Entry{Channel: "stable", BasisPoints: 5000, State: rollout.Halted})
	step(rollout.Action{Kind: "resume", Version: "1.1.0"}, rollout.Entry{Channel: "stable", BasisPoints: 5000, State: rollout.Active})
	step(rollout.Action{Kind: "promote", Version: "1.1.0", Channel: "beta"}, rollout.Entry{Channel: "beta", BasisPoints: 5000, State: rollout.Active})
	step(rollout.Action{Kind: "pull", Version: "1.1.0"}, rollout.Entry{Channel: "beta", BasisPoints: 5000, State: rollout.Pulled})
	st, err = c.Rollouts(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Releases[0]; r.Version != "1.1.0" || !r.Decided || r.State != rollout.Pulled || r.Channel != "beta" || r.Salt != first.Salt {
		t.Fatalf("status after the decisions: %+v", st)
	}
	// What the server answers is what the repository signed.
	doc, err := f.repo.Rollouts("hello")
	if err != nil || doc.Releases["1.1.0"].State != rollout.Pulled {
		t.Fatalf("the repository's decisions: %+v, %v", doc, err)
	}
}

// TestAdminRolloutRefused_R61_R63: a decision about a version the
// application key never signed, or below the signed minimum safe version,
// is refused with 422 and a message naming the version, and changes
// nothing that is served; malformed requests are 400.
func TestAdminRolloutRefused_R61_R63(t *testing.T) {
	f := newAdminFixture(t, nil)
	ctx := context.Background()
	c := f.client(t, f.hello)
	if _, err := c.Publish(ctx, "hello", f.signed(t, "1.1.0", "hello 1.1.0")); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.SetMinVersion(ctx, "hello", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Rollouts(ctx, "hello")
	if err != nil || st.MinVersion != "1.1.0" || len(st.Releases) != 2 || !st.Releases[1].BelowMin {
		t.Fatalf("status with a minimum: %+v, %v", st, err)
	}
	before := treeHashes(t, filepath.Join(f.dir, "public"))
	rc := f.client(t, f.roll)
	for _, tc := range []struct {
		name string
		a    rollout.Action
		msg  string
	}{
		{"unsigned version (R61)", rollout.Action{Kind: "start", Version: "9.9.9", BasisPoints: 500}, "9.9.9"},
		{"below the minimum (R63)", rollout.Action{Kind: "start", Version: "1.0.0", BasisPoints: 500}, "1.0.0"},
		{"resume below the minimum (R63)", rollout.Action{Kind: "resume", Version: "1.0.0"}, "1.0.0"},
	} {
		_, err := rc.Rollout(ctx, "hello", tc.a)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: %v, want 422 naming %s", tc.name, err, tc.msg)
		}
	}
	for _, tc := range []struct{ name, body, msg string }{
		{"unknown action", `{"action":"rewind","version":"1.1.0"}`, "not one of start"},
		{"unknown member", `{"action":"start","version":"1.1.0","basis_points":5,"target":"x"}`, "unknown field"},
		{"bad version", `{"action":"start","version":"v1.1","basis_points":5}`, "version"},
		{"share over 100%", `{"action":"start","version":"1.1.0","basis_points":10001}`, "within 0..10000"},
		{"negative share", `{"action":"start","version":"1.1.0","basis_points":-1}`, "within 0..10000"},
		{"a float", `{"action":"start","version":"1.1.0","basis_points":5.5}`, "rollout request"},
		{"bad channel", `{"action":"promote","version":"1.1.0","channel":"Beta!"}`, "channel"},
		{"promote without a channel", `{"action":"promote","version":"1.1.0"}`, "promote needs a channel"},
		{"two objects", `{"action":"halt","version":"1.1.0"}{"action":"pull","version":"1.1.0"}`, "more than one"},
		{"not JSON", `action=start`, "rollout request"},
	} {
		code, body := f.rolloutPost(t, f.roll, tc.body)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want 400 saying %q", tc.name, code, body, tc.msg)
		}
	}
	if d := treeDiff(before, treeHashes(t, filepath.Join(f.dir, "public"))); len(d) > 0 {
		t.Fatalf("refused decisions changed what is served: %v", d)
	}
	if _, err := rc.Rollout(ctx, "hello", rollout.Action{Kind: "start", Version: "1.1.0", BasisPoints: 500}); err != nil {
		t.Fatalf("a decision at the minimum: %v", err)
	}
}

// TestAdminRolloutOversized_R54: a decision body over MaxRolloutRequest is
// answered 413, unread when its length is declared, cut when it is not.
func TestAdminRolloutOversized_R54(t *testing.T) {
	f := newAdminFixture(t, nil)
	h, err := Admin(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body io.Reader, length int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/apps/hello/rollout", body)
		req.ContentLength = length
		req.Header.Set("Authorization", "Bearer "+f.roll)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	declared := &countingBody{}
	if rec := post(declared, 1<<20); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared 1 MiB: %d %s, want 413", rec.Code, rec.Body)
	}
	if n := declared.n.Load(); n != 0 {
		t.Fatalf("declared 1 MiB: the handler read %d bytes before refusing", n)
	}
	endless := &countingBody{prefix: `{"action":"start","version":"1.0.0","channel":"`}
	if rec := post(endless, -1); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("endless body: %d %s, want 413", rec.Code, rec.Body)
	}
	if n := endless.n.Load(); n > MaxRolloutRequest+64<<10 {
		t.Fatalf("endless body: the handler read %d bytes, limit %d", n, MaxRolloutRequest)
	}
	padded := `{"action":"start","version":"1.0.0","basis_points":5,"channel":"` + strings.Repeat("a", MaxRolloutRequest) + `"}`
	if code, body := f.rolloutPost(t, f.roll, padded); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over HTTPS, %d bytes: %d %s, want 413", len(padded), code, body)
	}
}

// TestAdminRolloutFlood_R55: decisions count against the token's rate
// like uploads.
func TestAdminRolloutFlood_R55(t *testing.T) {
	f := newAdminFixture(t, func(c *AdminConfig) {
		c.Now = func() time.Time { return time.Unix(1_800_000_000, 0) }
		c.TokenRate = Rate{Burst: 2, Every: time.Hour}
	})
	halt := `{"action":"halt","version":"1.0.0"}`
	var codes []int
	for range 3 {
		code, _ := f.rolloutPost(t, f.roll, halt)
		codes = append(codes, code)
	}
	if codes[2] != http.StatusTooManyRequests {
		t.Fatalf("three decisions with a burst of 2: %v, want the third 429", codes)
	}
}

// TestAdminPublishRollout: an upload with the fields channel and
// basis_points publishes the release with that decision; malformed fields
// are refused with 400 before anything is published.
func TestAdminPublishRollout(t *testing.T) {
	f := newAdminFixture(t, nil)
	ctx := context.Background()
	c := f.client(t, f.hello)
	s := f.signed(t, "1.1.0", "hello 1.1.0")
	before := treeHashes(t, filepath.Join(f.dir, "public"))
	for _, tc := range []struct {
		name   string
		fields [][2]string
		msg    string
	}{
		{"bad channel", [][2]string{{"channel", "Beta"}}, "channel"},
		{"float share", [][2]string{{"basis_points", "5.5"}}, "basis_points"},
		{"share over 100%", [][2]string{{"basis_points", "10001"}}, "basis_points"},
		{"a field twice", [][2]string{{"channel", "beta"}, {"channel", "beta"}}, "each once"},
		{"unknown field", [][2]string{{"state", "active"}}, "before the role"},
	} {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, fv := range tc.fields {
			mw.WriteField(fv[0], fv[1])
		}
		if err := writeUpload(mw, s, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", f.srv.url+"/api/v1/apps/hello/releases", &b)
		req.Header.Set("Authorization", "Bearer "+f.hello)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := f.srv.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s: %d %s, want 400 saying %q", tc.name, resp.StatusCode, body, tc.msg)
		}
	}
	if d := treeDiff(before, treeHashes(t, filepath.Join(f.dir, "public"))); len(d) > 0 {
		t.Fatalf("refused uploads changed what is served: %v", d)
	}
	if _, err := c.PublishWith(ctx, "hello", s, PublishOptions{Rollout: &rollout.Entry{Channel: "beta", BasisPoints: 500}}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Rollouts(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Releases[0]; r.Version != "1.1.0" || !r.Decided || r.Channel != "beta" || r.BasisPoints != 500 || r.State != rollout.Active {
		t.Fatalf("status after publishing into beta at 5%%: %+v", st)
	}
	var got RolloutStatus
	b, _ := json.Marshal(st)
	if err := json.Unmarshal(b, &got); err != nil || !strings.Contains(string(b), `"min_version":""`) {
		t.Fatalf("status JSON %s: %v", b, err)
	}
}
