package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/store"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferry-store")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(ctx, filepath.Join(dir, "ferry.db")) // or "postgres://..."
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	err = s.CreateToken(ctx, store.Token{ID: "t1", Kind: store.Enroll, Scope: "*", Hash: "hash-of-secret", Created: now, MaxUses: 10})
	if err != nil {
		log.Fatal(err)
	}
	err = s.Enroll(ctx, store.Installation{ID: "inst-1", CredentialHash: "hash-of-credential", Enrolled: now}, "hash-of-secret")
	if err != nil {
		log.Fatal(err)
	}
	batch := []store.Event{
		{Seq: 1, Hash: "h1", Event: event.Event{Time: now, Kind: event.InstallStarted, App: "web", Version: "1.1.0"}},
		{Seq: 2, Prev: "h1", Hash: "h2", Event: event.Event{Time: now, Kind: event.InstallDone, App: "web", Version: "1.1.0"}},
	}
	for range 2 { // the second send is a retry: nothing new
		n, err := s.AppendEvents(ctx, "inst-1", batch)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("new events:", n)
	}
	head, _ := s.ChainHead(ctx, "inst-1")
	st, _ := s.ReleaseStats(ctx, "web", "1.1.0")
	fmt.Printf("chain head: seq %d %s; started %d, installed %d\n", head.Seq, head.Hash, st.Started, st.Installed)
	// Output:
	// new events: 2
	// new events: 0
	// chain head: seq 2 h2; started 1, installed 1
}
