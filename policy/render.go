package policy

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/tpwatch/tpwatch/internal/texttable"
)

// WriteTable writes the rules for `tpwatch policy` in at most width
// columns (0: no limit): an aligned table, one rule a row, when it fits;
// else three lines a rule (the rule, its description, its section), which
// stay readable on 80 columns.
func WriteTable(w io.Writer, rules []Rule, width int) error {
	tab := &texttable.Table{Columns: []texttable.Column{
		{Title: "ID"}, {Title: "CLIENT → SERVER"}, {Title: "PORTS"}, {Title: "FEATURE"},
		{Title: "DESCRIPTION"}, {Title: "SECTION"},
	}}
	for i := range rules {
		r := &rules[i]
		tab.Add(r.ID, r.ClientName()+" → "+r.Server.String(), r.Transport.String()+"/"+r.PortsString(),
			orDash(r.Feature), r.Description, r.Section)
	}
	p := texttable.NewPainter(false)
	if width <= 0 || tab.NaturalWidth() <= width {
		if err := tab.Render(w, width, p); err != nil {
			return fmt.Errorf("write rule table: %w", err)
		}
		return nil
	}
	for i := range rules {
		r := &rules[i]
		head := r.ID + "  " + r.Transport.String() + "/" + r.PortsString() + "  " + r.ClientName() + " → " + r.Server.String()
		if r.Feature != "" {
			head += "  (feature " + r.Feature + ")"
		}
		for _, line := range []struct {
			first, text string
		}{{"", head}, {"    ", r.Description}, {"    ", r.Section}} {
			if err := texttable.Paragraph(w, width, line.first, "    ", line.text, texttable.Plain, p); err != nil {
				return fmt.Errorf("write rule table: %w", err)
			}
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ruleJSON is the JSON form of a rule; its field names are part of the
// `tpwatch policy --format json` output.
type ruleJSON struct {
	ID          string   `json:"id"`
	Client      string   `json:"client"`
	Server      string   `json:"server"`
	Transport   string   `json:"transport"`
	Ports       []string `json:"ports"`
	Feature     string   `json:"feature"`
	Reply       bool     `json:"reply"`
	Shared      bool     `json:"shared"`
	Announced   string   `json:"announced,omitempty"`
	Description string   `json:"description"`
	Section     string   `json:"section"`
}

// WriteJSON writes the rules as one indented JSON array.
func WriteJSON(w io.Writer, rules []Rule) error {
	out := make([]ruleJSON, len(rules))
	for i := range rules {
		r := &rules[i]
		ports := make([]string, len(r.Ports))
		for j, pr := range r.Ports {
			ports[j] = pr.String()
		}
		out[i] = ruleJSON{
			ID: r.ID, Client: r.ClientName(), Server: r.Server.String(),
			Transport: r.Transport.String(), Ports: ports, Feature: r.Feature,
			Reply: r.Reply, Shared: r.Shared, Announced: r.Announced.String(), Description: r.Description, Section: r.Section,
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write rule JSON: %w", err)
	}
	return nil
}
