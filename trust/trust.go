// Package trust is ferry's TUF client core: it refreshes and holds trusted
// metadata following the TUF specification's client workflow (section 5),
// built on go-tuf's metadata and trustedmetadata packages.
//
// It performs no I/O of its own: metadata bytes come in through a Source and
// trusted copies are persisted through a Store. Time comes from Config.Now.
package trust

import (
	"context"
	"errors"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Source fetches metadata files from one repository mirror.
//
// FetchMetadata returns the bytes of the metadata file called name (for
// example "timestamp.json" or "3.snapshot.json", relative to the mirror's
// metadata base), reading at most maxLen bytes: a longer body is an error
// (never truncated data). A missing file is an error wrapping ErrNotFound.
type Source interface {
	FetchMetadata(ctx context.Context, name string, maxLen int64) ([]byte, error)
}

// Store persists trusted metadata between runs.
//
// Load returns the bytes last saved for role, or an error wrapping
// fs.ErrNotExist. Save durably and atomically replaces the copy for role
// (a crash leaves the old or the new copy, never a torn one). Role names are
// arbitrary strings from signed metadata; the Store encodes them safely.
type Store interface {
	Load(role string) ([]byte, error)
	Save(role string, data []byte) error
}

// ErrNotFound is wrapped by Source errors for a file the mirror does not have.
var ErrNotFound = errors.New("not found")

// Config configures a Client. Root and Store are required.
type Config struct {
	Root  []byte // trusted root.json shipped with the application (required)
	Store Store  // where trusted metadata is kept (required)
	// Now is the clock; nil means time.Now. Expiry is judged against the
	// time read once at the start of each refresh.
	Now func() time.Time
}

// Client holds trusted metadata. It is not safe for concurrent use.
type Client struct {
	cfg Config
}

// New loads trusted state from the Store (falling back to Config.Root when
// the stored copy is missing or fails verification) and returns a Client.
func New(cfg Config) (*Client, error) {
	return nil, errors.New("trust: not implemented")
}

// Refresh runs the TUF client workflow against src: root chain, timestamp,
// snapshot, top-level targets. When the timestamp is unchanged it fetches
// nothing else and re-parses nothing it already trusts.
func (c *Client) Refresh(ctx context.Context, src Source) error {
	return errors.New("trust: not implemented")
}

// Target searches the delegation graph (pre-order, terminating delegations,
// visited set, MaxDelegations) for the signed description of target path
// name, fetching delegated roles from src as needed. Each delegated role is
// verified against the delegator on the path being searched. It returns an
// error wrapping ErrNotFound if no role lists name.
func (c *Client) Target(ctx context.Context, src Source, name string) (*metadata.TargetFiles, error) {
	return nil, errors.New("trust: not implemented")
}

// TargetsUnder returns every target whose path starts with prefix (for
// example "hello/"), each as resolved by Target, so that only the role the
// specification's search would choose can describe a path.
func (c *Client) TargetsUnder(ctx context.Context, src Source, prefix string) (map[string]*metadata.TargetFiles, error) {
	return nil, errors.New("trust: not implemented")
}
