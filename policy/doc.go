// Package policy holds the Threat Prevention port matrix as data, the site
// inventory and the rule matching that tells, for a flow's transport, server
// port and the roles of its two ends, which documented rule (if any) it
// follows.
//
// The matrix is a YAML file embedded in the binary (matrix.yaml, written from
// the product document "Firewall Ports"); --matrix replaces it with another
// file of the same shape, so nothing about a product version is hard-coded in
// Go. The site inventory (the --config file) says which hosts hold which
// roles, turns optional features on, lists the SIEM ports and adds the
// site's own rules. Without it, the inventory is inferred from traffic: a
// host answering on a documented server port takes that role.
//
// Compile turns a matrix and an inventory into a Policy. The Policy is what
// the classifier asks once per new flow: its look-ups go through a port index
// built once and allocate nothing, and it may be shared by several
// goroutines.
package policy
