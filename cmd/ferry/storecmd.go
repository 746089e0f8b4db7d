package main

import (
	"context"
	"path/filepath"

	"github.com/ferry-updates/ferry/store"
)

// storeFile is the server's SQLite database in a repository directory, by
// default (never under public/).
const storeFile = "ferry.db"

// openStore opens the server's store: db if given (a SQLite file or a
// postgres:// URL), else DIR/ferry.db.
func openStore(ctx context.Context, dir, db string) (store.Store, error) {
	if db == "" {
		db = filepath.Join(dir, storeFile)
	}
	return store.Open(ctx, db)
}
