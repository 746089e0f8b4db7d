package pkcs11_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/keys/pkcs11"
)

const mod = "module-path=/usr/lib/softhsm/libsofthsm2.so"

func TestParseURI(t *testing.T) {
	u, err := pkcs11.ParseURI("pkcs11:token=ferry%20hsm;object=root-1;id=%01%02?" + mod + "&pin-value=1234")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "ferry hsm" || u.Object != "root-1" || string(u.ID) != "\x01\x02" ||
		u.ModulePath != "/usr/lib/softhsm/libsofthsm2.so" || u.PINValue != "1234" {
		t.Fatalf("parsed %+v", u)
	}
	if pin, err := u.PIN(); err != nil || pin != "1234" {
		t.Fatalf("PIN() = %q, %v", pin, err)
	}
	if s := u.String(); s != "pkcs11:token=ferry%20hsm;object=root-1;id=%01%02" {
		t.Fatalf("String() = %q", s)
	}
	u, err = pkcs11.ParseURI("pkcs11:slot-id=3;id=%aa;type=private?" + mod)
	if err != nil || *u.SlotID != 3 || u.ID[0] != 0xaa {
		t.Fatalf("parsed %+v, %v", u, err)
	}
}

func TestParseURIRefuses(t *testing.T) {
	for _, tt := range []struct{ uri, msg string }{
		{"pkcs12:token=x", "want a pkcs11: URI"},
		{"pkcs11:object=k?" + mod, "exactly one of token, serial or slot-id"},
		{"pkcs11:token=a;serial=b;object=k?" + mod, "exactly one of token, serial or slot-id"},
		{"pkcs11:token=a?" + mod, "give object or id"},
		{"pkcs11:token=a;object=k", "no module-path"},
		{"pkcs11:token=a;object=k;object=j?" + mod, `"object" given twice`},
		{"pkcs11:token=a;object=k;colour=red?" + mod, `unknown path attribute "colour"`},
		{"pkcs11:token=a;object=k?" + mod + "&pin=1", `unknown query attribute "pin"`},
		{"pkcs11:token=a;object=k;type=cert?" + mod, `type "cert"`},
		{"pkcs11:token=a;object=%zz?" + mod, "invalid URL escape"},
		{"pkcs11:token=a;object?" + mod, "is not NAME=VALUE"},
		{"pkcs11:slot-id=x;object=k?" + mod, "slot-id"},
		{"pkcs11:token=a;object=k?" + mod + "&pin-value=9876&pin-source=/p", "not both"},
	} {
		_, err := pkcs11.ParseURI(tt.uri)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseURI(%q) err = %v, want %q", tt.uri, err, tt.msg)
		}
		if err != nil && strings.Contains(err.Error(), "9876") {
			t.Errorf("error shows the PIN: %v", err)
		}
	}
}

func TestPINSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct{ name, src, pin, msg string }{
		{"file uri", "file:" + write("a", "4321\n"), "4321", ""},
		{"plain path", write("b", "4321"), "4321", ""},
		{"empty", write("c", "\n"), "", "is empty"},
		{"huge", write("d", strings.Repeat("1", 2000)), "", "larger than"},
		{"missing", filepath.Join(dir, "none"), "", "read pin-source"},
	} {
		u, err := pkcs11.ParseURI("pkcs11:token=a;object=k?" + mod + "&pin-source=" + tt.src)
		if err != nil {
			t.Fatal(err)
		}
		pin, err := u.PIN()
		if pin != tt.pin || (tt.msg == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
			t.Errorf("%s: PIN() = %q, %v; want %q, %q", tt.name, pin, err, tt.pin, tt.msg)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("pkcs11:token=ferry;object=root-1;id=%01?" + mod + "&pin-value=1234")
	f.Add("pkcs11:slot-id=0;id=%aa%bb;type=private?" + mod + "&pin-source=file:/p")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := pkcs11.ParseURI(s)
		if err != nil {
			return
		}
		// What parses names its key in String(), and String() parses
		// back (with the module) to the same token and key selectors.
		u2, err := pkcs11.ParseURI(u.String() + "?module-path=" + "/m")
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", u.String(), err)
		}
		if u2.Token != u.Token || u2.Serial != u.Serial || u2.Object != u.Object || string(u2.ID) != string(u.ID) {
			t.Fatalf("round trip changed the key: %+v vs %+v", u, u2)
		}
		if (u.SlotID == nil) != (u2.SlotID == nil) || (u.SlotID != nil && *u.SlotID != *u2.SlotID) {
			t.Fatalf("round trip changed the slot: %+v vs %+v", u, u2)
		}
	})
}
