package texttable

import "os"

// Color is how a piece of text is shown on a terminal that takes colour.
type Color uint8

const (
	Plain Color = iota
	Bold
	Dim
	Red    // blocked
	Yellow // unexpected
	Green  // working
	Cyan   // pending
)

var ansi = [...]string{Plain: "", Bold: "\x1b[1m", Dim: "\x1b[2m", Red: "\x1b[1;31m", Yellow: "\x1b[1;33m", Green: "\x1b[32m", Cyan: "\x1b[36m"}

// Painter colours text, or leaves it alone.
type Painter struct{ enabled bool }

// NewPainter returns a painter that colours when color is true.
func NewPainter(color bool) Painter { return Painter{enabled: color} }

// Paint returns text in color.
func (p Painter) Paint(c Color, text string) string {
	if !p.enabled || c == Plain || text == "" || int(c) >= len(ansi) {
		return text
	}
	return ansi[c] + text + "\x1b[0m"
}

// ColorWanted reports whether output to a terminal should be coloured:
// yes, unless NO_COLOR is set and not empty (https://no-color.org).
func ColorWanted(terminal bool) bool {
	return terminal && os.Getenv("NO_COLOR") == ""
}
