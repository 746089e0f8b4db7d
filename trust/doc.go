// Package trust is ferry's TUF client core: it refreshes and holds trusted
// metadata following the TUF specification's client workflow (section 5),
// built on go-tuf's metadata types and trustedmetadata checks, but not on
// go-tuf's updater.
//
// It performs no I/O of its own and has no file system code: metadata
// bytes come in through a Source and trusted copies are persisted through a
// Store (internal/metastore keeps them in a directory). Time comes from
// Config.Now and is read once per Refresh; every expiry in that refresh is
// judged against it. What happens is reported as typed events (package
// event) to Config.Events.
//
// Guarantees:
//   - Signatures are checked over the canonical form of the "signed" object
//     as served (strict: duplicate keys, floats and invalid UTF-8 are
//     rejected), each public key counts once toward a threshold, keys of
//     unknown types or with malformed material never count, and a threshold
//     below 1 is invalid. go-tuf's own trustedmetadata checks run afterwards
//     as a backstop.
//   - Untrusted bytes never panic the process: panics in decoding or
//     verification become ErrInvalid errors.
//   - A refresh whose timestamp is unchanged fetches only timestamp.json
//     (and probes the next root) and re-parses nothing else.
//   - A refresh that fails, including a Store failure, leaves the previous
//     trusted set in memory. The Store holds only metadata that verified
//     when it was saved; a Save that failed may still have replaced its file
//     (a directory store: an error wrapping atomicfile.ErrNotDurable), which is safe
//     because the next New loads and verifies whatever is there.
//   - Delegations are searched in pre-order with terminating delegations, a
//     visited set and a cap; a delegated role is verified against the
//     delegator on the path searched now; roles missing from snapshot are
//     rejected. Path patterns are matched as go-tuf's GetRolesForTarget
//     does, without allocating; path_hash_prefixes are prefixes of the
//     lower-case hex SHA-256 digest of the target path, as the
//     specification defines them (go-tuf v2.4.2 compares base64url);
//     TargetsUnder tests each target only against the delegations that
//     can match under its prefix.
//   - Target and TargetsUnder results are memoized for the trusted state
//     they were computed on: a lookup after a refresh that changed nothing
//     is a map lookup. Any change of trusted metadata (a new timestamp,
//     root, snapshot or targets, a newly loaded role) discards the memo,
//     and a memoized result is not served after the earliest expiry of
//     the roles its search used.
//   - Every rejection returned is a *SecurityError wrapping one kind
//     (ErrBadSignature, ErrRollback, ErrExpired, ErrMismatch, ErrInvalid,
//     ErrTooLarge) and is reported exactly once to Config.Events as an
//     event.MetadataRejected, whose evidence names the role, the reason
//     kind ("bad_signature", "rollback", "expired", "mismatch", "invalid",
//     "too_large") and, where known, expected, got, versions and key ids;
//     a cached file set aside is one event.MetadataCacheIgnore (not a
//     delegated role's copy a newer version in snapshot superseded).
//
// The Store is trusted storage, private to one repository: key it per
// repository (for example by a hash of Config.Root). Even so, no root in
// it is trusted on its own: New starts from Config.Root, the root the
// application ships, and walks forward through the intermediate roots that
// refreshes stored ("N.root"), each verified as in
// spec 5.3.4-5.3.5 against its predecessor. A root planted in the Store,
// signed only by its own keys, stops the walk and is reported; the stored
// "root" (the newest root, kept for spec 5.3.8 and ferry tuf) is only
// compared with the chain's end. When the walk stops early, cached
// metadata that only a later root signs is set aside, and trusted again as
// the rollback reference once a refresh has reached that root.
//
// A Client is not safe for concurrent use.
package trust
