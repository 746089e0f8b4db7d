package reposim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/ferry-updates/ferry/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var _ trust.Source = (*Repo)(nil)

// FetchMetadata serves a published file (or its override), counting the
// fetch. A hidden or unknown file wraps trust.ErrNotFound; a file longer
// than maxLen is an error.
func (r *Repo) FetchMetadata(ctx context.Context, name string, maxLen int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetches[name]++
	data, ok := r.overrides[name]
	if !ok {
		data, ok = r.files[name]
	}
	if !ok || r.hidden[name] {
		if r.MissingStatus == http.StatusForbidden {
			return nil, fmt.Errorf("reposim: %s: %w", name, trust.ErrForbidden)
		}
		return nil, fmt.Errorf("reposim: %s: %w", name, trust.ErrNotFound)
	}
	if int64(len(data)) > maxLen {
		return nil, fmt.Errorf("reposim: %s: %d bytes exceeds limit %d", name, len(data), maxLen)
	}
	return append([]byte(nil), data...), nil
}

// Handler serves the repository over HTTP as a mirror: GET
// /metadata/NAME answers what FetchMetadata(NAME) would, where NAME is the
// request's path segment as sent (still escaped, as trust names files), so
// a name that is not one segment is never found. A missing file answers
// MissingStatus (404 by default). Fetches are counted as by FetchMetadata.
func (r *Repo) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name, ok := strings.CutPrefix(req.URL.EscapedPath(), "/metadata/")
		if req.Method != http.MethodGet || !ok || name == "" || strings.Contains(name, "/") {
			http.NotFound(w, req)
			return
		}
		data, err := r.FetchMetadata(req.Context(), name, math.MaxInt64)
		switch {
		case errors.Is(err, trust.ErrForbidden):
			http.Error(w, "forbidden", http.StatusForbidden)
		case errors.Is(err, trust.ErrNotFound):
			http.NotFound(w, req)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write(data)
		}
	})
}

// Bytes returns what is served for name now (nil if nothing).
func (r *Repo) Bytes(name string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.overrides[name]; ok {
		return append([]byte(nil), d...)
	}
	return append([]byte(nil), r.files[name]...)
}

// Serve makes the repository serve data for name instead of the published
// bytes, until ClearOverrides.
func (r *Repo) Serve(name string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overrides[name] = append([]byte(nil), data...)
}

// Hide makes name answer "not found" until ClearOverrides.
func (r *Repo) Hide(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hidden[name] = true
}

// ClearOverrides undoes Serve and Hide.
func (r *Repo) ClearOverrides() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overrides, r.hidden = map[string][]byte{}, map[string]bool{}
}

// Fetches returns how many times name was fetched.
func (r *Repo) Fetches(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetches[name]
}

// FetchLog returns a copy of all fetch counts by file name.
func (r *Repo) FetchLog() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.fetches {
		out[k] = v
	}
	return out
}

// ResetFetches zeroes the fetch counts.
func (r *Repo) ResetFetches() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetches = map[string]int{}
}

// Delegate makes delegator delegate paths to role (created empty if new),
// trusting keys (threshold 1); with no keys, role's current keys, or one
// new key. It returns the keys. Delegating the same role from a second
// delegator builds a diamond.
func (r *Repo) Delegate(delegator, role string, paths []string, terminating bool, keys ...*Key) []*Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(keys) == 0 {
		keys = r.keys[role]
	}
	if len(keys) == 0 {
		keys = []*Key{newKeyFrom(r.rand)}
	}
	if r.keys[role] == nil {
		r.keys[role] = keys
	}
	if r.roles[role] == nil {
		r.roles[role] = metadata.Targets(r.expiry(role))
	}
	d := r.roles[delegator]
	if d.Signed.Delegations == nil {
		d.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	dr := metadata.DelegatedRole{Name: role, Threshold: 1, Terminating: terminating, Paths: paths}
	for _, k := range keys {
		d.Signed.Delegations.Keys[k.ID] = k.Public
		dr.KeyIDs = append(dr.KeyIDs, k.ID)
	}
	d.Signed.Delegations.Roles = append(d.Signed.Delegations.Roles, dr)
	r.dirty[delegator], r.dirty[role] = true, true
	return keys
}

// RotateKey replaces role's signing keys with one new key, in root for a
// top-level role or in every delegator of a delegated role, and returns it.
func (r *Repo) RotateKey(role string) *Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := newKeyFrom(r.rand)
	r.setKeysLocked(role, []*Key{k}, 0)
	return k
}

// AddKey adds a new key to role (keeping the others) and returns it.
func (r *Repo) AddKey(role string) *Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := newKeyFrom(r.rand)
	r.setKeysLocked(role, append(append([]*Key(nil), r.keys[role]...), k), 0)
	return k
}

// SetThreshold sets role's threshold (in root or in every delegator).
func (r *Repo) SetThreshold(role string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setKeysLocked(role, r.keys[role], n)
}

// setKeysLocked makes keys the trusted and signing keys of role; a
// threshold of 0 keeps the current one.
func (r *Repo) setKeysLocked(role string, keys []*Key, threshold int) {
	r.keys[role] = keys
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if rr, ok := r.root.Signed.Roles[role]; ok {
		for _, k := range keys {
			r.root.Signed.Keys[k.ID] = k.Public
		}
		rr.KeyIDs = ids
		if threshold != 0 {
			rr.Threshold = threshold
		}
		r.rootDirty = true
		if role == metadata.TARGETS {
			r.dirty[role] = true
		}
		return
	}
	for name, md := range r.roles {
		del := md.Signed.Delegations
		if del == nil {
			continue
		}
		for i := range del.Roles {
			if del.Roles[i].Name != role {
				continue
			}
			for _, k := range keys {
				del.Keys[k.ID] = k.Public
			}
			del.Roles[i].KeyIDs = ids
			if threshold != 0 {
				del.Roles[i].Threshold = threshold
			}
			r.dirty[name] = true
		}
	}
	r.dirty[role] = true
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	must(err)
	return b
}
