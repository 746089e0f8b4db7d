package harness

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Median returns the median of rs by each field separately (the middle
// value, or the lower of the two middle values), and the first error seen.
// It returns the zero Result for no input.
func Median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	m := Result{Step: rs[0].Step}
	m.Nanos = median(rs, func(r Result) int64 { return r.Nanos })
	m.Allocs = uint64(median(rs, func(r Result) int64 { return int64(r.Allocs) }))
	m.AllocBytes = uint64(median(rs, func(r Result) int64 { return int64(r.AllocBytes) }))
	m.PeakRSS = median(rs, func(r Result) int64 { return r.PeakRSS })
	m.Maxrss = median(rs, func(r Result) int64 { return r.Maxrss })
	m.Bytes = median(rs, func(r Result) int64 { return r.Bytes })
	m.Requests = median(rs, func(r Result) int64 { return r.Requests })
	m.Files = median(rs, func(r Result) int64 { return r.Files })
	for _, r := range rs {
		if r.Err != "" {
			m.Err = r.Err
			break
		}
	}
	return m
}

func median(rs []Result, f func(Result) int64) int64 {
	v := make([]int64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

// Table is a markdown table.
type Table struct {
	Header []string
	Rows   [][]string
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Write prints t as a GitHub markdown table; numeric-looking columns are
// right-aligned.
func (t *Table) Write(w io.Writer) error {
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for i := range t.Header {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	row(t.Header)
	b.WriteString("|")
	for i := range t.Header {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		row(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Dur formats d with three significant digits in a unit that fits.
func Dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3g s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	}
}

// Size formats n bytes in B, KiB, MiB or GiB.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// Count formats n with a k or M suffix above 10,000.
func Count(n uint64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	default:
		return fmt.Sprint(n)
	}
}

// Ratio formats a/b as "12.3x", or "n/a" when b is zero.
func Ratio(a, b int64) string {
	if b == 0 {
		return "n/a"
	}
	r := float64(a) / float64(b)
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0fx", r)
	case r < 0.095:
		return fmt.Sprintf("%.3fx", r)
	}
	return fmt.Sprintf("%.1fx", r)
}
