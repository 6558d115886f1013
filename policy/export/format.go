package export

import (
	"fmt"
	"io"

	"github.com/tpwatch/tpwatch/policy"
)

// Format is an output format of Write.
type Format uint8

const (
	FormatInvalid Format = iota
	PowerShell
	NFTables
)

// ParseFormat reads a --format value: powershell or nftables.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "powershell":
		return PowerShell, nil
	case "nftables":
		return NFTables, nil
	}
	return FormatInvalid, fmt.Errorf("--format %q: want powershell or nftables", s)
}

// Write writes the rules of the host or role o names, from policy p (which
// must have a config: its inventory), in format f.
func Write(w io.Writer, p *policy.Policy, f Format, o Options) error {
	pl, err := makePlan(p, o)
	if err != nil {
		return err
	}
	switch f {
	case PowerShell:
		err = writePowerShell(w, pl, o)
	case NFTables:
		err = writeNFTables(w, pl, o)
	default:
		return fmt.Errorf("export: unknown format %d", f)
	}
	if err != nil {
		return fmt.Errorf("write firewall rules: %w", err)
	}
	return nil
}

// header is what both formats say first, as comment lines.
func header(pl *plan, o Options, what string) []string {
	made := "tpwatch"
	if o.Version != "" {
		made += " " + o.Version
	}
	src := o.Source
	if src == "" {
		src = "the Threat Prevention firewall matrix and the site config"
	}
	return []string{
		oneLine(fmt.Sprintf("%s for %s, made by %s", what, pl.subject, made)),
		oneLine("from " + src + "."),
	}
}

// writeEntryComments writes the comment lines that open entry e in either
// format, each after prefix: the rule, its note, and why it is not created
// when it is not; it reports whether the entry's rule is to be written.
func writeEntryComments(b io.Writer, prefix string, e *entry) bool {
	fmt.Fprintln(b, prefix+describe(e.rule))
	if e.note != "" {
		fmt.Fprintln(b, prefix+oneLine(e.note))
	}
	if e.skip != "" {
		fmt.Fprintln(b, prefix+"not created: "+oneLine(e.skip))
		return false
	}
	return true
}
