//go:build race

package server

// raceEnabled: the race detector inflates allocations and empties sync.Pools.
const raceEnabled = true
