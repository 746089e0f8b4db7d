package rollout

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The examples of docs/rollouts.md are checked here: the decision document
// and the policy parse and are what Marshal writes (up to spaces), and the
// worked cohort example is what Bucket computes.

// docBlock returns the first ```lang block of the section under heading.
func docBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/rollouts.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/rollouts.md has no heading %q", heading)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	_, block, ok := strings.Cut(sec, "\n```"+lang+"\n")
	if !ok {
		t.Fatalf("docs/rollouts.md, %q: no ```%s block", heading, lang)
	}
	block, _, _ = strings.Cut(block, "\n```")
	return block
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDocExamples(t *testing.T) {
	ex := docBlock(t, "## The decision document", "json")
	d, err := ParseDoc("hello", []byte(ex))
	if err != nil {
		t.Fatalf("the decision document of docs/rollouts.md: %v", err)
	}
	if b, err := d.Marshal(); err != nil || string(b) != compact(t, ex) {
		t.Fatalf("the decision document of docs/rollouts.md is not what Marshal writes:\n%s\n%s", b, compact(t, ex))
	}
	if d.Releases["1.4.2"].BasisPoints != 500 || d.Releases["1.4.1"].State != Pulled {
		t.Fatalf("the example no longer says what the text says: %+v", d)
	}
	ex = docBlock(t, "## The minimum safe version", "json")
	p, err := ParsePolicy("hello", []byte(ex))
	if err != nil {
		t.Fatalf("the policy of docs/rollouts.md: %v", err)
	}
	if b, err := p.Marshal(); err != nil || string(b) != compact(t, ex) {
		t.Fatalf("the policy of docs/rollouts.md is not what Marshal writes:\n%s\n%s", b, compact(t, ex))
	}
}

func TestDocCohortExample(t *testing.T) {
	fields := map[string]string{}
	for _, line := range strings.Split(docBlock(t, "## Cohorts", "text"), "\n") {
		if i := strings.LastIndex(line, "  "); i > 0 {
			fields[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i:])
		}
	}
	id, salt := fields["install ID"], fields["salt"]
	sum := sha256.Sum256([]byte("ferry-cohort/v1\x00" + salt + "\x00" + id))
	first := binary.BigEndian.Uint64(sum[:8])
	bucket, _ := strconv.Atoi(fields["bucket"])
	switch {
	case fields["SHA-256"] != hex.EncodeToString(sum[:]):
		t.Errorf("docs/rollouts.md: SHA-256 %s, computed %x", fields["SHA-256"], sum)
	case fields["first 8 bytes"] != strconv.FormatUint(first, 10):
		t.Errorf("docs/rollouts.md: first 8 bytes %s, computed %d", fields["first 8 bytes"], first)
	case Bucket(id, salt) != bucket || int(first%Full) != bucket:
		t.Errorf("docs/rollouts.md: bucket %d, Bucket computes %d", bucket, Bucket(id, salt))
	}
}
