// Package server serves a ferry repository over HTTPS.
//
// Repository is an http.Handler for the public directory of a repository
// (see package repo for its layout):
//
//	/metadata/N.ROLE.json   version-prefixed metadata, immutable
//	/metadata/timestamp.json  the one file that changes in place
//	/targets/APP/VERSION/OS-ARCH/HASH.FILE  hash-prefixed targets, immutable
//
// It serves files only from inside that directory (through os.Root, so no
// path or symbolic link can reach outside it), never lists a directory,
// never serves a name that starts with a dot (temporary files of
// internal/atomicfile), and answers GET and HEAD only. Responses carry a
// strong ETag, honour If-None-Match, If-Modified-Since and Range, and carry
// Cache-Control "public, max-age=31536000, immutable" for version- and
// hash-prefixed files and "no-cache" for everything else, so a CDN may
// cache the immutable files forever and revalidates timestamp.json.
//
// Run serves a handler over HTTPS only (TLS 1.2 minimum) with header, read,
// write and idle timeouts, a header size limit, a structured access log
// (log/slog) and a graceful shutdown when its context is cancelled. A
// response may stall for at most WriteTimeout and must keep MinWriteRate
// on average after that grace; at most MaxConns connections are served at
// once, and one more is closed as soon as it is accepted. Run accepts and
// makes the TLS handshakes itself: with Config.Fast (the Repository
// handler, as ferry serve sets it), an HTTP/1.1 connection's plain GETs
// and HEADs of metadata held in memory (timestamp.json) are answered from
// prebuilt bytes by a strict parser of its own (fastparse.go), which hands
// the first request it does not call its own, and the rest of that
// connection, to net/http; HTTP/2 connections are net/http's from the
// start (fastpath.go).
// LoadOrCreateCA keeps a small CA of the server's own in two files (the
// certificate for clients, the key 0600 next to it) and issues the server's
// certificate from it, so clients keep working across restarts; SelfSigned
// creates a throw-away CA and server certificate for tests and demos;
// LoadKeyPair loads a certificate and key from files.
//
// Admin is the admin API, mounted under /api/v1/ next to the repository:
// release pipelines upload an application role they signed with their own
// keys, and the files it adds, and the Publisher behind it (a *repo.Repo)
// checks the role against the application's delegation and signs snapshot
// and timestamp with the online keys (see admin.go for the endpoints and
// their answers). Requests are authenticated by publisher tokens scoped to
// one application, stored hashed in the tokens file (CreateToken,
// ListTokens, RevokeToken), and limited per client address and per token
// (token buckets, 429 with Retry-After), in body size (413 before the body
// is read when its length is declared) and in stall time. AdminClient is
// the pipeline's side: it fetches the current role and streams an upload.
//
// Metrics are the server's Prometheus metrics in a registry of their own
// (docs/metrics.md): Run counts each request in Config.Metrics, the
// reporting side counts check-ins and events (ObserveCheckin,
// ObserveEvent), the gauges of the signed metadata are read again when
// timestamp.json changes, and Metrics.Handler serves them only to a client
// with the metrics bearer token.
//
// The handlers returned by Repository and Admin, and AdminClient, are safe
// for concurrent use.
package server
