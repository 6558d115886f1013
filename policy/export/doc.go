// Package export writes the firewall rules a host needs according to the
// matrix and the site's inventory: a PowerShell script of
// New-NetFirewallRule commands for the Windows servers of Threat
// Prevention, or an nftables ruleset for Linux hosts (`tpwatch policy
// export`).
//
// Per host (--host: the roles its address holds in the inventory) or per
// role (--role), every rule of the policy gives an inbound rule where the
// host holds the rule's server role and an outbound one where it holds the
// client role, with the addresses the inventory gives the peer role as the
// remote addresses (any address only for the rules whose client is
// "any"). A rule whose feature is off, whose peer role the inventory does
// not name (a site without NetApp filers needs no NetApp rule), or whose
// every peer is the host itself (the Enterprise Manager and its SQL Server
// on one box) is written as a comment saying why it was left out. Every rule
// carries its id and the document section it comes from.
//
// Running an export again replaces what the last one made and nothing
// else: the PowerShell script first removes every rule of its group (each
// rule also has a stable name, tpwatch-<rule id>-in|out), and the nftables
// ruleset replaces its own table, inet tpwatch.
//
// The nftables table is a host firewall of its own: its input chain drops
// what the matrix does not allow (replies, loopback and ICMP excepted),
// as Windows Firewall blocks inbound connections no rule allows; its
// output chain accepts everything and counts the documented flows. nftables
// passes a packet only when every base chain of its hook accepts it, so a
// table cannot open what another table drops: the header of the ruleset
// says so.
package export
