package dashboard

import (
	"strings"
	"testing"
)

// FuzzParseCredential: ParseCredential never panics, accepts only what is
// within its bounds, and what it accepts reads back the same from String.
func FuzzParseCredential(f *testing.F) {
	good, _ := HashPassword([]byte(testPassword), testParams)
	f.Add(good.String())
	f.Add("$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=1,t=1,p=0$$")
	f.Add("$argon2id$v=19$m=99999999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredential([]byte(s))
		if err != nil {
			return
		}
		if c.Memory > maxMemory || c.Time < 1 || c.Time > maxTime || c.Lanes < 1 || c.Lanes > maxLanes || len(c.Salt) < 8 || len(c.Hash) < 16 {
			t.Fatalf("accepted out of bounds: %+v from %q", c, s)
		}
		back, err := ParseCredential([]byte(c.String()))
		if err != nil || back.String() != c.String() || back.String() != strings.TrimSpace(s) {
			t.Fatalf("%q parsed to %q, which reads back as %q (%v)", s, c.String(), back.String(), err)
		}
	})
}
