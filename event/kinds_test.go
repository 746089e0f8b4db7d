package event

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestKindsComplete: Kinds lists every Kind constant declared in
// event.go, each once, so a new kind cannot be left out of it.
func TestKindsComplete(t *testing.T) {
	src, err := os.ReadFile("event.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []Kind
	for _, m := range regexp.MustCompile(`(?m)^\s+\w+\s+Kind = "([^"]+)"`).FindAllSubmatch(src, -1) {
		declared = append(declared, Kind(m[1]))
	}
	if len(declared) < 30 {
		t.Fatalf("found only %d kind declarations in event.go", len(declared))
	}
	if got := Kinds(); !slices.Equal(got, declared) {
		t.Errorf("Kinds() = %v\nwant the declarations %v", got, declared)
	}
}
