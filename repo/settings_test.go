package repo

import (
	"testing"
)

func TestSettingsRoundTrip(t *testing.T) {
	in := newSettings(InitOptions{Passphrase: []byte("p")}.WithDefaults())
	data, err := in.marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := parseSettings(data)
	if err != nil {
		t.Fatal(err)
	}
	if out.exp != DefaultExpiries || out.KeyWorkFactor != 18 || out.Format != 1 {
		t.Fatalf("round trip: %+v", out)
	}
	for _, bad := range []string{
		`{}`,
		`{"format":2,"expiries":{"root":"1h","targets":"1h","snapshot":"1h","timestamp":"1h"},"key_work_factor":18}`,
		`{"format":1,"expiries":{"root":"1h","targets":"1h","snapshot":"1h","timestamp":"1s"},"key_work_factor":18}`,
		`{"format":1,"expiries":{"root":"1h","targets":"1h","snapshot":"1h","timestamp":"1h"},"key_work_factor":0}`,
		`{"format":1,"expiries":{"root":"1h","targets":"1h","snapshot":"1h","timestamp":"1h"},"key_work_factor":18,"extra":1}`,
	} {
		if _, err := parseSettings([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzParseSettings(f *testing.F) {
	good, _ := newSettings(InitOptions{Passphrase: []byte("p")}.WithDefaults()).marshal()
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseSettings(data)
		if err != nil {
			return
		}
		// Whatever parses is sane and survives a round trip.
		if s.exp.Timestamp <= 0 || s.KeyWorkFactor < 1 || s.KeyWorkFactor > 30 {
			t.Fatalf("accepted insane settings %+v", s)
		}
		again, err := s.marshal()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := parseSettings(again)
		if err != nil || s2.exp != s.exp {
			t.Fatalf("round trip: %v, %+v vs %+v", err, s2.exp, s.exp)
		}
	})
}
