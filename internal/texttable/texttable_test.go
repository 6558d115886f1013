package texttable

import (
	"bytes"
	"strings"
	"testing"
)

func TestWrap(t *testing.T) {
	for _, tt := range []struct {
		text  string
		width int
		want  []string
	}{
		{"a b c", 0, []string{"a b c"}},
		{"one two three", 7, []string{"one two", "three"}},
		{"tcp/10000,10001,10002", 10, []string{"tcp/10000,", "10001,", "10002"}},
		{"netappc-agent-fpolicy", 10, []string{"netappc-", "agent-", "fpolicy"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"", 5, []string{""}},
		{"agent → enterprise-manager", 12, []string{"agent →", "enterprise-", "manager"}},
	} {
		if got := Wrap(tt.text, tt.width); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tt.text, tt.width, got, tt.want)
		}
	}
}

// TestTableShrinksTheWidestColumnsFirst: numbers stay whole, text columns
// wrap, and no line is wider than asked.
func TestTableShrinksTheWidestColumnsFirst(t *testing.T) {
	tab := &Table{Columns: []Column{{Title: "ID"}, {Title: "DESCRIPTION"}, {Title: "N", Right: true, Fixed: true}}}
	tab.Add("agent-em-grpc", "Agent communication with the Enterprise Manager (gRPC)", "12345")
	tab.Add("tm-dc-ldap", "LDAP to domain controllers", "7")
	var b bytes.Buffer
	if err := tab.Render(&b, 40, NewPainter(false)); err != nil {
		t.Fatal(err)
	}
	// 40 columns: ID 13, two gaps of 2, N 5: the description gets 18.
	want := `ID             DESCRIPTION             N
agent-em-grpc  Agent               12345
               communication with
               the Enterprise
               Manager (gRPC)
tm-dc-ldap     LDAP to domain          7
               controllers
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if tab.NaturalWidth() != 13+2+54+2+5 {
		t.Errorf("NaturalWidth() = %d", tab.NaturalWidth())
	}
}

func TestParagraphHangs(t *testing.T) {
	var b bytes.Buffer
	if err := Paragraph(&b, 20, "- ", "  ", "one two three four five six", Plain, NewPainter(false)); err != nil {
		t.Fatal(err)
	}
	if want := "- one two three four\n  five six\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// A first line narrower than the others, and text with runs of spaces
// (the rule lines of tpwatch policy on 80 columns): every word once, in
// order, no line too long. The first line used to be cut from the text by
// its words rejoined with single spaces, which a double space defeated, so
// the whole text came out again after it.
func TestParagraphFirstLineOfItsOwn(t *testing.T) {
	var b bytes.Buffer
	text := "em-agent-wmi-dcom  tcp/1024-65535  enterprise-manager → agent  (feature wmi-auto-deploy)"
	if err := Paragraph(&b, 80, "", "    ", text, Plain, NewPainter(false)); err != nil {
		t.Fatal(err)
	}
	want := "em-agent-wmi-dcom tcp/1024-65535 enterprise-manager → agent (feature\n    wmi-auto-deploy)\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := Paragraph(&b, 16, "BLOCKED ", "        ", "agent-em-grpc  tcp/3741", Plain, NewPainter(false)); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if Width(line) > 16 {
			t.Errorf("line %q is wider than 16", line)
		}
	}
	if got := strings.Join(strings.Fields(b.String()), " "); got != "BLOCKED agent- em-grpc tcp/3741" {
		t.Errorf("words %q", got)
	}
}

func TestColorWanted(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	if !ColorWanted(true) || ColorWanted(false) {
		t.Error("colour: want it on a terminal only")
	}
	t.Setenv("NO_COLOR", "1")
	if ColorWanted(true) {
		t.Error("NO_COLOR=1 still colours")
	}
	if got := NewPainter(true).Paint(Red, "x"); got != "\x1b[1;31mx\x1b[0m" {
		t.Errorf("Paint = %q", got)
	}
}
