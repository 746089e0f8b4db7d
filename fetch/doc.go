// Package fetch is ferry's HTTPS transport: it downloads metadata and
// artifacts with size limits, an overall deadline, a minimum transfer rate,
// Range resume and a redirect policy that never leaves https or the
// configured host.
//
// Guarantees:
//
//   - Only https:// URLs are fetched. Plain http:// is refused unless
//     Options.InsecureAllowHTTPLoopback is set and the host is a loopback
//     address (127.0.0.0/8, ::1, localhost). Every other scheme is refused.
//   - TLS is at least version 1.2 and certificates are always verified,
//     against Options.RootCAs or the system roots. No option turns that off.
//   - A redirect is followed only to the same scheme and host:port as the
//     original request, for at most MaxRedirects hops.
//   - Bytes never reads more than its limit plus one byte, whatever the
//     Content-Length says (endless data).
//   - File never writes more than Want.Length bytes, keeps at most one
//     fixed-size buffer in memory, and returns nil only when the length and
//     every known hash (sha256, sha512) of the whole file match. Bytes
//     already on disk from an earlier attempt are read back and hashed.
//     On a length or hash mismatch the file is removed.
//   - Every request has an overall deadline and is aborted when fewer than
//     MinRate bytes per second arrive over a RateWindow, including a server
//     that accepts the connection and never answers (slow retrieval). The
//     deadline is Options.Timeout for Bytes; for File it is Options.Timeout
//     plus the time the remaining bytes take at MinRate, and File resumes
//     (with Range, a bounded number of times) a request that was cut off
//     after making progress.
//   - Proxies come from the environment (HTTPS_PROXY, NO_PROXY).
//   - Responses are never decompressed: every request asks for
//     Accept-Encoding identity (so a caller's http.Client does not ask for
//     gzip either) and a response that is encoded anyway is refused
//     (ErrRefused); the bytes hashed are the bytes sent.
//   - File never follows a symlink at the partial file's name and resumes
//     only a regular file of this user (internal/safefile).
//
// Join escapes names from signed metadata segment by segment; JoinEscaped
// appends a name that is already one escaped segment (the metadata file
// names package trust hands a Source) after checking it with CheckSegment.
//
// Errors read in one line and start with "fetch URL: ". Callers branch on
// ErrNotFound, ErrTooLarge, ErrTooSlow, ErrTimeout, ErrRefused and
// ErrMismatch with errors.Is, and get evidence with errors.As on
// *StatusError and *MismatchError.
//
// A Fetcher is safe for concurrent use.
package fetch
