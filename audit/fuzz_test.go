package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify_R65 feeds the verifier mutations of a valid log: it never panics,
// what it accepts round-trips exactly, and against the log's known end it
// accepts nothing but the log itself with lines appended (R65).
func FuzzVerify_R65(f *testing.F) {
	orig, err := os.ReadFile(filepath.Join("testdata", "example.log"))
	if err != nil {
		f.Fatal(err)
	}
	known, err := Verify(bytes.NewReader(orig), Start)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig)
	ls := lines(orig)
	f.Add(join([][]byte{ls[0], ls[2], ls[1], ls[3]}))
	f.Add(join(ls[1:]))
	f.Add(orig[:len(orig)-7])
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Verify(bytes.NewReader(data), State{})
		var out []byte
		_, err := Read(bytes.NewReader(data), Start, func(r Record) error {
			b, err := json.Marshal(r)
			out = append(append(out, b...), '\n')
			return err
		})
		if err == nil && !bytes.Equal(out, data) {
			t.Fatalf("accepted a log that does not round-trip:\n%s\nre-encodes as\n%s", data, out)
		}
		if _, err := VerifyKnown(bytes.NewReader(data), Start, known); err == nil && !bytes.HasPrefix(data, orig) {
			t.Fatalf("accepted a mutation of the log against its known end:\n%s", data)
		}
	})
}
