package harness

import (
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name  string
		nanos []int64
		want  int64
	}{
		{"one", []int64{5}, 5},
		{"odd", []int64{9, 1, 5}, 5},
		{"even takes lower middle", []int64{4, 1, 3, 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []Result
			for _, n := range tt.nanos {
				rs = append(rs, Result{Nanos: n, Bytes: n * 10})
			}
			m := Median(rs)
			if m.Nanos != tt.want || m.Bytes != tt.want*10 {
				t.Errorf("Median = %d ns, %d bytes; want %d, %d", m.Nanos, m.Bytes, tt.want, tt.want*10)
			}
		})
	}
	if m := Median([]Result{{Nanos: 1}, {Nanos: 2, Err: "boom"}}); m.Err != "boom" {
		t.Errorf("Median lost the error: %+v", m)
	}
}

func TestTableWrite(t *testing.T) {
	tb := Table{Header: []string{"case", "time"}}
	tb.Add("ferry | first", Dur(1500*time.Microsecond))
	var b strings.Builder
	if err := tb.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "| case | time |\n|---|---:|\n| ferry \\| first | 1.5 ms |\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{Dur(2500 * time.Millisecond), "2.5 s"},
		{Dur(12 * time.Microsecond), "12 µs"},
		{Size(512), "512 B"},
		{Size(3 << 20), "3.0 MiB"},
		{Count(123456), "123.5k"},
		{Ratio(300, 10), "30.0x"},
		{Ratio(1, 0), "n/a"},
		{Ratio(6, 127), "0.047x"},
		{Ratio(250, 1), "250x"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
