// Package texttable lays out text for a terminal of a given width: tables
// whose columns shrink, and wrap their cells, to fit, and paragraphs that
// wrap with a hanging indent; with ANSI colour when asked (a terminal that
// has not set NO_COLOR). The reports of `tpwatch replay` and `tpwatch
// policy` use it, so that 80 columns stay readable.
package texttable

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Column describes one column of a Table.
type Column struct {
	Title string
	// Right aligns the column's cells to the right (numbers).
	Right bool
	// Min is the narrowest the column may shrink to (0: the width of its
	// longest word, so that only whole words wrap).
	Min int
	// Fixed columns never shrink (numbers, states).
	Fixed bool
}

// Cell is a table cell: its text and the colour it is shown in.
type Cell struct {
	Text  string
	Color Color
}

// Table is rows of cells under titled columns.
type Table struct {
	Columns []Column
	rows    [][]Cell
	// Indent is written before every line.
	Indent string
	// Gap is the space between columns (2 when 0).
	Gap int
}

// Add adds a row of plain cells.
func (t *Table) Add(cells ...string) {
	row := make([]Cell, len(cells))
	for i, c := range cells {
		row[i] = Cell{Text: c}
	}
	t.rows = append(t.rows, row)
}

// AddCells adds a row of cells.
func (t *Table) AddCells(cells ...Cell) { t.rows = append(t.rows, cells) }

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// NaturalWidth is the width the table takes with no cell wrapped.
func (t *Table) NaturalWidth() int {
	gap := t.Gap
	if gap == 0 {
		gap = 2
	}
	total := Width(t.Indent) + gap*(len(t.Columns)-1)
	for i, c := range t.Columns {
		w := Width(c.Title)
		for _, row := range t.rows {
			if i < len(row) {
				w = max(w, Width(row[i].Text))
			}
		}
		total += w
	}
	return total
}

// Render writes the table in at most width columns (0: no limit), its
// header in bold where p colours. When the columns' natural widths do not
// fit, the ones that may shrink give up width in proportion to their
// natural width, down to their minimum, and their cells wrap.
func (t *Table) Render(w io.Writer, width int, p Painter) error {
	gap := t.Gap
	if gap == 0 {
		gap = 2
	}
	n := len(t.Columns)
	natural, floor := make([]int, n), make([]int, n)
	for i, c := range t.Columns {
		natural[i] = Width(c.Title)
		floor[i] = max(c.Min, longestWord(c.Title))
		for _, row := range t.rows {
			if i < len(row) {
				natural[i] = max(natural[i], Width(row[i].Text))
				if c.Min == 0 {
					floor[i] = max(floor[i], longestWord(row[i].Text))
				}
			}
		}
		if c.Fixed {
			floor[i] = natural[i]
		}
		floor[i] = min(floor[i], natural[i])
	}
	widths := fit(natural, floor, width-Width(t.Indent)-gap*(n-1))
	ew := &errWriter{w: w}
	header := make([]Cell, n)
	for i, c := range t.Columns {
		header[i] = Cell{Text: c.Title, Color: Bold}
	}
	t.writeRow(ew, header, widths, gap, p)
	for _, row := range t.rows {
		t.writeRow(ew, row, widths, gap, p)
	}
	return ew.err
}

// fit shrinks widths, each no further than its floor, until they sum to
// at most room (when room > 0).
func fit(natural, floor []int, room int) []int {
	widths := append([]int(nil), natural...)
	if room <= 0 {
		return widths
	}
	for {
		total, slack := 0, 0
		for i := range widths {
			total += widths[i]
			slack += widths[i] - floor[i]
		}
		over := total - room
		if over <= 0 || slack == 0 {
			return widths
		}
		// Take from the widest shrinkable columns first, a column at a
		// time: that keeps narrow columns whole.
		widest := -1
		for i := range widths {
			if widths[i] > floor[i] && (widest < 0 || widths[i] > widths[widest]) {
				widest = i
			}
		}
		// Down to the next widest (or by what is over), at least one.
		next := floor[widest]
		for i := range widths {
			if i != widest && widths[i] < widths[widest] && widths[i] > next {
				next = widths[i]
			}
		}
		cut := min(max(widths[widest]-next, 1), over, widths[widest]-floor[widest])
		widths[widest] -= cut
	}
}

func (t *Table) writeRow(w io.Writer, row []Cell, widths []int, gap int, p Painter) {
	lines := make([][]string, len(widths))
	height := 1
	for i := range widths {
		text := ""
		if i < len(row) {
			text = row[i].Text
		}
		lines[i] = Wrap(text, widths[i])
		height = max(height, len(lines[i]))
	}
	for l := 0; l < height; l++ {
		var b strings.Builder
		b.WriteString(t.Indent)
		for i, width := range widths {
			s := ""
			if l < len(lines[i]) {
				s = lines[i][l]
			}
			pad := strings.Repeat(" ", max(width-Width(s), 0))
			color := Plain
			if i < len(row) {
				color = row[i].Color
			}
			if t.Columns[i].Right {
				b.WriteString(pad)
				b.WriteString(p.Paint(color, s))
			} else {
				b.WriteString(p.Paint(color, s))
				if i < len(widths)-1 {
					b.WriteString(pad)
				}
			}
			if i < len(widths)-1 {
				b.WriteString(strings.Repeat(" ", gap))
			}
		}
		io.WriteString(w, strings.TrimRight(b.String(), " ")+"\n")
	}
}

// Paragraph writes text wrapped to width (0: no limit), the first line
// after first and the others after rest (a hanging indent).
func Paragraph(w io.Writer, width int, first, rest, text string, color Color, p Painter) error {
	lines := []string{text}
	if width > 0 {
		lines = wrapLines(text, width-Width(first), width-Width(rest))
	}
	ew := &errWriter{w: w}
	for i, l := range lines {
		indent := rest
		if i == 0 {
			indent = first
		}
		io.WriteString(ew, indent+p.Paint(color, l)+"\n")
	}
	return ew.err
}

// Wrap breaks text into lines of at most width runes (0: no limit), at
// spaces where it can, after a comma, a slash or a hyphen where a word is
// too long, and inside a word only when nothing else fits.
func Wrap(text string, width int) []string { return wrapLines(text, width, width) }

// wrapLines is Wrap with a first line of its own width (a paragraph's
// first line has its own indent). A width of 0 or less is no limit. Text
// that fits is returned as it is; wrapped lines are joined by single
// spaces.
func wrapLines(text string, first, rest int) []string {
	if first <= 0 || rest <= 0 || Width(text) <= first {
		return []string{text}
	}
	var lines []string
	var line strings.Builder
	room := func() int {
		if len(lines) == 0 {
			return first
		}
		return rest
	}
	for _, word := range strings.Fields(text) {
		for word != "" {
			switch r := room(); {
			case line.Len() > 0 && Width(line.String())+1+Width(word) <= r:
				line.WriteByte(' ')
				line.WriteString(word)
				word = ""
			case line.Len() > 0:
				// On the next line, whose room may differ.
				lines = append(lines, line.String())
				line.Reset()
			case Width(word) <= r:
				line.WriteString(word)
				word = ""
			default:
				// A word longer than a line: break it after a comma, a
				// slash or a hyphen if one falls in the line, else at
				// the width.
				cut := breakAt(word, r)
				lines = append(lines, word[:cut])
				word = word[cut:]
			}
		}
	}
	if line.Len() > 0 || len(lines) == 0 {
		lines = append(lines, line.String())
	}
	return lines
}

// breakAt returns the byte offset at which to break a word longer than
// width: after its last ',', '/' or '-' within the width, else at the
// width.
func breakAt(word string, width int) int {
	best, runes := -1, 0
	for i, r := range word {
		if runes == width {
			break
		}
		runes++
		if r == ',' || r == '/' || r == '-' {
			best = i + utf8.RuneLen(r)
		}
	}
	if best > 0 {
		return best
	}
	n := 0
	for i := range word {
		if n == width {
			return i
		}
		n++
	}
	return len(word)
}

// Width is the number of columns text takes: runes, which is right for
// the text tpwatch writes (addresses, names, arrows).
func Width(text string) int { return utf8.RuneCountInString(text) }

func longestWord(text string) int {
	longest := 0
	for _, w := range strings.Fields(text) {
		longest = max(longest, Width(w))
	}
	return longest
}

// errWriter keeps the first write error so the rendering can stay linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
