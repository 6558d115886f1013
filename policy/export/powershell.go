package export

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/tpwatch/tpwatch/policy"
)

// Group is the Windows Firewall group of every exported rule: re-running a
// script removes the group first, and `Get-NetFirewallRule -Group` finds
// them all. It differs from whatever group Threat Prevention's installer
// uses for its own rules, which it never touches.
const Group = "tpwatch: Netwrix Threat Prevention"

// writePowerShell writes a script of New-NetFirewallRule commands
// (NetSecurity module, Windows Server 2012 and later).
func writePowerShell(w io.Writer, pl *plan, o Options) error {
	b := bufio.NewWriter(w)
	profile := o.Profile
	if profile == "" {
		profile = DefaultProfile
	}
	fmt.Fprintln(b, "#Requires -RunAsAdministrator")
	for _, l := range header(pl, o, "Windows Firewall rules") {
		fmt.Fprintln(b, "# "+l)
	}
	fmt.Fprintf(b, `# Run it in an elevated PowerShell on that host. Running it again replaces
# these rules: it first removes every rule of the group below. To remove them:
#   Get-NetFirewallRule -Group %s | Remove-NetFirewallRule
$ErrorActionPreference = 'Stop'
$group = %s
$fwProfile = %s
Get-NetFirewallRule -Group $group -ErrorAction SilentlyContinue | Remove-NetFirewallRule
`, psQuote(Group), psQuote(Group), psQuote(profile))
	for _, dir := range []direction{inbound, outbound} {
		first := true
		for i := range pl.entries {
			e := &pl.entries[i]
			if e.dir != dir {
				continue
			}
			if first {
				if dir == inbound {
					fmt.Fprintln(b, "\n# Inbound: connections this host accepts")
				} else {
					fmt.Fprintln(b, "\n# Outbound: connections this host opens (Windows allows outbound by default; these matter where outbound is blocked)")
				}
				first = false
			}
			writePSEntry(b, e)
		}
	}
	return b.Flush()
}

func writePSEntry(b *bufio.Writer, e *entry) {
	r := e.rule
	if !writeEntryComments(b, "# ", e) {
		return
	}
	if e.anyWhy != "" {
		fmt.Fprintln(b, "# any remote address: "+oneLine(e.anyWhy))
	}
	name := "tpwatch-" + r.ID + "-" + e.dir.String()
	display := fmt.Sprintf("tpwatch: %s to %s %s/%s [%s]", r.ClientName(), r.Server, r.Transport, r.PortsString(), r.ID)
	dirWord, portParam := "Inbound", "-LocalPort"
	if e.dir == outbound {
		dirWord, portParam = "Outbound", "-RemotePort"
	}
	remote := "Any"
	if e.peers != nil {
		addrs := make([]string, len(e.peers))
		for i, p := range e.peers {
			addrs[i] = psQuote(addrString(p))
		}
		remote = "@(" + strings.Join(addrs, ", ") + ")"
	}
	fmt.Fprintf(b, "New-NetFirewallRule -Name %s -DisplayName %s -Group $group `\n", psQuote(name), psQuote(display))
	fmt.Fprintf(b, "  -Direction %s -Action Allow -Protocol %s %s %s -RemoteAddress %s `\n",
		dirWord, strings.ToUpper(r.Transport.String()), portParam, psPorts(r.Ports), remote)
	fmt.Fprintf(b, "  -Profile $fwProfile -Enabled True -Description %s | Out-Null\n",
		psQuote(oneLine(r.Description+" ("+r.Section+")")))
}

// psPorts writes a rule's ports as -LocalPort and -RemotePort take them:
// one port or range as a string, several as an array.
func psPorts(ports []policy.PortRange) string {
	if len(ports) == 1 {
		return psQuote(ports[0].String())
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = psQuote(p.String())
	}
	return "@(" + strings.Join(s, ", ") + ")"
}

// psQuote makes s a single-quoted PowerShell string, in which nothing is
// expanded. PowerShell also ends such a string at the typographic single
// quotes, so each of them is doubled like the ASCII one.
func psQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, c := range s {
		switch c {
		case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
			b.WriteRune(c)
		}
		b.WriteRune(c)
	}
	b.WriteByte('\'')
	return b.String()
}
