package rollout

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseDoc: ParseDoc never panics, refuses input over the bound, and
// what it accepts marshals to canonical bytes that parse back to the same
// Doc; Marshal's output is stable.
func FuzzParseDoc(f *testing.F) {
	good, _ := exampleDoc().Marshal()
	for _, s := range []string{string(good),
		`{"ferry-rollout":{"app":"hello","releases":{}}}`,
		`{"x":1.5,"ferry-rollout":{"releases":{"1.0.0":{"salt":"` + salt1 + `","state":"halted","channel":"a","basis_points":0}},"app":"hello"}}`,
		`{"ferry-rollout":{"app":"hello","releases":{"1.0.0":{"salt":"` + salt1 + `","state":"halted","channel":"a","basis_points":1e3}}}}`,
		`{"ferry-rollout":{"app":"hello","app":"hello","releases":{}}}`,
		`{"ferry-rollout":null}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDoc("hello", b)
		if err != nil {
			if d != nil {
				t.Fatalf("ParseDoc failed but returned %+v", d)
			}
			return
		}
		if len(b) > MaxDocLength {
			t.Fatalf("accepted %d bytes", len(b))
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", d, err)
		}
		e, err := ParseDoc("hello", out)
		if err != nil || !reflect.DeepEqual(d, e) {
			t.Fatalf("round trip of %+v: %+v, %v", d, e, err)
		}
		again, _ := e.Marshal()
		if !bytes.Equal(again, out) {
			t.Fatalf("Marshal not stable: %s, then %s", out, again)
		}
		assertCanonical(t, out)
		if _, err := ParseDoc("other", b); err == nil {
			t.Fatalf("a document for hello parsed as another application's")
		}
	})
}

// FuzzParsePolicy: the same for ParsePolicy.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		`{"ferry-policy":{"app":"hello","min_version":"1.4.0"}}`,
		`{"a":[],"ferry-policy":{"min_version":"2.0.0-rc.1","app":"hello"}}`,
		`{"ferry-policy":{"app":"hello","min_version":"1.4.0","min_version":"0.1.0"}}`,
		`{"ferry-policy":{"app":"hello","min_version":"v1.4.0"}}`,
		`{"ferry-policy":{"app":"hello","min_version":"1.3.0"},"ferry-policy-lowered":{"from":"1.4.0"}}`,
		`{"ferry-policy":{"app":"hello","min_version":"1.3.0"},"ferry-policy-lowered":{"from":"1.3.0"}}`,
		`{"ferry-policy":{}}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy("hello", b)
		if err != nil {
			if p != (Policy{}) {
				t.Fatalf("ParsePolicy failed but returned %+v", p)
			}
			return
		}
		if len(b) > MaxDocLength || p.App != "hello" {
			t.Fatalf("accepted %d bytes: %+v", len(b), p)
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", p, err)
		}
		q, err := ParsePolicy("hello", out)
		if err != nil || q != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, q, err)
		}
		assertCanonical(t, out)
	})
}
