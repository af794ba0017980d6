package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// cell is one measured value, or the reason there is none.
type cell struct {
	Value float64 `json:"value"`
	// Missing, when not empty, is shown instead of Value: "n/a (...)" or
	// "failed".
	Missing string `json:"missing,omitempty"`
}

func value(v float64) cell    { return cell{Value: v} }
func missing(why string) cell { return cell{Missing: why} }
func (c cell) ok() bool       { return c.Missing == "" }
func (c cell) String() string { return formatCell(c) }

func durationMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// row is one line of the table: govmm against the peer named in its notes.
type row struct {
	Name  string `json:"name"`
	Govmm cell   `json:"govmm"`
	Peer  cell   `json:"peer"`
	Unit  string `json:"unit"`
	Notes string `json:"notes"`
}

// ratio is govmm / peer, or "-" when either is missing or the peer is 0.
func (r row) ratio() string {
	if !r.Govmm.ok() || !r.Peer.ok() || r.Peer.Value == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r.Govmm.Value/r.Peer.Value)
}

// formatCell prints about three significant digits.
func formatCell(c cell) string {
	if !c.ok() {
		return c.Missing
	}
	v := c.Value
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// writeTable prints rows as aligned columns under a header line.
func writeTable(w io.Writer, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tgovmm\tpeer\tratio\tunit\tnotes")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Govmm, r.Peer, r.ratio(), r.Unit,
			strings.ReplaceAll(r.Notes, "\n", " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the table: %w", err)
	}
	return nil
}

// median returns the middle value of ds (the mean of the two middle ones
// for an even count), or 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
