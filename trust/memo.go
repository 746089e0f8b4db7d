package trust

import (
	"maps"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// memo keeps the results of Target and TargetsUnder for one trusted state,
// so that a lookup repeated after a refresh that changed nothing is a map
// lookup. It is valid only while the state is the one it was filled from
// (same root, timestamp, snapshot and targets: Refresh starts a new memo
// when any of them changes) and no delegated role has been loaded since
// (the number of held roles is unchanged). Each result also remembers the
// earliest expiry of the roles its search used: after it, the lookup runs
// again (and reports the expiry). Errors are never memoized.
type memo struct {
	st     *state
	nroles int
	target map[string]memoTarget
	under  map[string]memoUnder
}

type memoTarget struct {
	tf      *metadata.TargetFiles
	expires time.Time
}

type memoUnder struct {
	m       map[string]*metadata.TargetFiles
	expires time.Time
}

// memoValid returns the client's memo, replacing it with an empty one
// unless it still describes the client's state.
func (c *Client) memoValid() *memo {
	m := c.memo
	if m == nil || m.st != c.st || m.nroles != len(c.st.roles) {
		m = &memo{st: c.st, nroles: len(c.st.roles), target: map[string]memoTarget{}, under: map[string]memoUnder{}}
		c.memo = m
	}
	return m
}

// keepMemo carries the memo over to st, a refresh's copy of the state in
// which nothing changed.
func (c *Client) keepMemo(st *state) {
	if m := c.memo; m != nil && m.st == c.st && m.nroles == len(st.roles) {
		m.st = st
		return
	}
	c.memo = nil
}

func (c *Client) memoTarget(name string) (*metadata.TargetFiles, bool) {
	e, ok := c.memoValid().target[name]
	if !ok || c.RefTime.After(e.expires) {
		return nil, false
	}
	cp := *e.tf
	return &cp, true
}

func (c *Client) memoUnder(prefix string) (map[string]*metadata.TargetFiles, bool) {
	e, ok := c.memoValid().under[prefix]
	if !ok || c.RefTime.After(e.expires) {
		return nil, false
	}
	return copyTargets(e.m), true
}

// rememberTarget and rememberUnder store a result computed on the current
// state (after the lookup, so roles it loaded count as part of that state).
func (c *Client) rememberTarget(name string, tf *metadata.TargetFiles, b *budget) {
	cp := *tf
	c.memoValid().target[name] = memoTarget{&cp, b.expires}
}

func (c *Client) rememberUnder(prefix string, m map[string]*metadata.TargetFiles, b *budget) {
	c.memoValid().under[prefix] = memoUnder{copyTargets(m), b.expires}
}

// copyTargets copies the map and each TargetFiles (callers may modify
// what they get; the maps inside are shared with the trusted metadata, as
// they are without the memo).
func copyTargets(m map[string]*metadata.TargetFiles) map[string]*metadata.TargetFiles {
	out := maps.Clone(m)
	for k, v := range out {
		cp := *v
		out[k] = &cp
	}
	return out
}

// sameTrust reports whether a refresh left the trusted metadata as it was
// (the fast path: same root, timestamp, snapshot and targets).
func sameTrust(a, b *state) bool {
	return a.root == b.root && a.ts == b.ts && a.snap == b.snap && a.targets == b.targets
}
