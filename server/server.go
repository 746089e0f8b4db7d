// Package server serves a ferry repository over HTTPS.
package server

import (
	"errors"
	"net/http"
)

// Repository returns a handler serving the public directory of a repository
// (DIR/public): /metadata/... and /targets/..., with ETag, conditional
// requests, Range and Cache-Control.
func Repository(publicDir string) (http.Handler, error) {
	return nil, errors.New("server: not implemented")
}
