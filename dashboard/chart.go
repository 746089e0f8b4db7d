package dashboard

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/store"
)

// The chart of an application's page: installs over time, one line per
// version, each the running total of installations that installed it in
// the range shown. It is drawn on the server as inline SVG (its template
// is in app.html): no script, no image request, and every label escaped
// like the rest of the page.

// chartSteps is the number of intervals a range is cut into.
const chartSteps = 60

type chartRange struct {
	name string
	span time.Duration
}

var chartRanges = []chartRange{{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// chartRangeOf is the range named, 24h for any other name.
func chartRangeOf(name string) chartRange {
	for _, r := range chartRanges {
		if r.name == name {
			return r
		}
	}
	return chartRanges[1]
}

// The drawing's geometry, in SVG user units.
const (
	chartW, chartH             = 720, 240
	padLeft, padRight          = 48, 132
	padTop, padBottom          = 12, 28
	plotW, plotH               = chartW - padLeft - padRight, chartH - padTop - padBottom
	maxSeries                  = 8
	chartLegendX               = chartW - padRight + 12
	chartLegendLineH           = 18
	chartYTicks                = 4
	chartXTicks                = 6
	chartLabelMaxLen           = 20
	chartTimeFormatShort       = "15:04"
	chartTimeFormatLong        = "Jan 2"
	chartTimeFormatSwitchAbove = 48 * time.Hour
)

// palette is one colour per version, distinct also to most colour-blind
// readers (the Okabe-Ito set).
var palette = []string{"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"}

type chart struct {
	W, H, X0, Y0, X1, Y1 int
	Series               []series
	XTicks, YTicks       []tick
	Empty                bool
	Total                int
	Others               int // versions beyond maxSeries, left out
}

type series struct {
	Version, Color string
	Points         string // "x,y x,y ..."
	Total          int
	LegendY        int
}

type tick struct {
	X, Y  int
	Label string
}

// newChart draws counts (from store.InstallCounts over steps intervals of
// span from since) as running totals per version, newest versions first
// in the legend.
func newChart(counts []store.InstallCount, since time.Time, span time.Duration, steps int) chart {
	c := chart{W: chartW, H: chartH, X0: padLeft, Y0: padTop + plotH, X1: padLeft + plotW, Y1: padTop}
	per := map[string][]int{}
	for _, n := range counts {
		i := int(n.Start.Sub(since) / (span / time.Duration(steps)))
		if i < 0 || i >= steps {
			continue
		}
		if per[n.Version] == nil {
			per[n.Version] = make([]int, steps)
		}
		per[n.Version][i] += n.Installs
	}
	versions := make([]string, 0, len(per))
	for v := range per {
		versions = append(versions, v)
	}
	slices.SortFunc(versions, func(a, b string) int {
		if release.ValidVersion(a) == nil && release.ValidVersion(b) == nil {
			return release.CompareVersions(b, a)
		}
		return strings.Compare(b, a)
	})
	if len(versions) > maxSeries {
		c.Others = len(versions) - maxSeries
		versions = versions[:maxSeries]
	}
	top := 0
	for _, v := range versions {
		sum := 0
		for _, n := range per[v] {
			sum += n
		}
		top = max(top, sum)
		c.Total += sum
	}
	c.Empty = top == 0
	top = niceCeil(max(top, 1))
	x := func(i int) int { return padLeft + i*plotW/steps }
	y := func(n int) int { return padTop + plotH - n*plotH/top }
	for k, v := range versions {
		var b strings.Builder
		sum := 0
		b.WriteString(strconv.Itoa(x(0)) + "," + strconv.Itoa(y(0)))
		for i, n := range per[v] {
			if n > 0 {
				// A step: flat until the interval ends, then up.
				b.WriteString(" " + strconv.Itoa(x(i)) + "," + strconv.Itoa(y(sum)))
				sum += n
				b.WriteString(" " + strconv.Itoa(x(i+1)) + "," + strconv.Itoa(y(sum)))
			}
		}
		b.WriteString(" " + strconv.Itoa(x(steps)) + "," + strconv.Itoa(y(sum)))
		label := v
		if r := []rune(label); len(r) > chartLabelMaxLen {
			label = string(r[:chartLabelMaxLen]) + "…"
		}
		c.Series = append(c.Series, series{Version: label, Color: palette[k%len(palette)], Points: b.String(), Total: sum,
			LegendY: padTop + 10 + k*chartLegendLineH})
	}
	for i := 0; i <= chartYTicks; i++ {
		n := top * i / chartYTicks
		c.YTicks = append(c.YTicks, tick{X: padLeft - 6, Y: y(n), Label: strconv.Itoa(n)})
	}
	format := chartTimeFormatShort
	if span > chartTimeFormatSwitchAbove {
		format = chartTimeFormatLong
	}
	for i := 0; i <= chartXTicks; i++ {
		at := since.Add(span * time.Duration(i) / chartXTicks)
		c.XTicks = append(c.XTicks, tick{X: padLeft + i*plotW/chartXTicks, Y: padTop + plotH + 18, Label: at.UTC().Format(format)})
	}
	return c
}

// niceCeil rounds n up to chartYTicks times 1, 2 or 5 times a power of
// ten, so that every tick is a round whole number.
func niceCeil(n int) int {
	step := (max(n, 1) + chartYTicks - 1) / chartYTicks
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= step {
				return m * p * chartYTicks
			}
		}
	}
}
