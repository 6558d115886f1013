package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes the rules as an aligned text table, one rule a row, for
// `tpwatch policy`.
func WriteTable(w io.Writer, rules []Rule) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLIENT\tSERVER\tTRANSPORT\tPORTS\tFEATURE\tDESCRIPTION\tSECTION")
	for i := range rules {
		r := &rules[i]
		feature := r.Feature
		if feature == "" {
			feature = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.ClientName(), r.Server,
			r.Transport, r.PortsString(), feature, r.Description, r.Section)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write rule table: %w", err)
	}
	return nil
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
			Reply: r.Reply, Shared: r.Shared, Description: r.Description, Section: r.Section,
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write rule JSON: %w", err)
	}
	return nil
}
