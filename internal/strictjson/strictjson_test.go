package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestObject(t *testing.T) {
	m, err := Object([]byte(` {"a": 1, "A": "x", "b": {"a": 2, "a": 3}} `))
	if err != nil || len(m) != 3 || string(m["a"]) != "1" || string(m["A"]) != `"x"` {
		t.Fatalf("Object = %v, %v", m, err)
	}
	bad := map[string]string{
		"":                   "not a JSON object",
		"null":               "not a JSON object",
		"[1]":                "not a JSON object",
		`"x"`:                "not a JSON object",
		`{"a":1,"a":2}`:      `member "a" twice`,
		`{"a":1} {}`:         "after",
		`{"a":1}x`:           "",
		`{"a":}`:             "",
		`{"a":1`:             "",
		`{"a":1,"\u0061":2}`: "twice", // the same name escaped
	}
	for in, want := range bad {
		if _, err := Object([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Object(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestStringUintOnly(t *testing.T) {
	if s, err := String(json.RawMessage(`"a\u0062"`)); err != nil || s != "ab" {
		t.Errorf("String = %q, %v", s, err)
	}
	for _, in := range []string{"null", "1", "{}", `["a"]`, ""} {
		if s, err := String(json.RawMessage(in)); err == nil {
			t.Errorf("String(%s) = %q", in, s)
		}
	}
	for in, want := range map[string]int{"0": 0, "1": 1, "500": 500, "10000": 10000} {
		if n, err := Uint(json.RawMessage(in), 10000); err != nil || n != want {
			t.Errorf("Uint(%s) = %d, %v", in, n, err)
		}
	}
	for _, in := range []string{"10001", "-1", "-0", "05", "5.0", "5e2", "0.5", "1E1", "null", `"5"`, "", "99999999999999999999999"} {
		if n, err := Uint(json.RawMessage(in), 10000); err == nil {
			t.Errorf("Uint(%s) = %d", in, n)
		}
	}
	m := map[string]json.RawMessage{"a": nil, "b": nil}
	if err := Only(m, "a", "b", "c"); err != nil {
		t.Errorf("Only = %v", err)
	}
	if err := Only(m, "a"); err == nil || !strings.Contains(err.Error(), `unknown member "b"`) {
		t.Errorf("Only = %v", err)
	}
}
