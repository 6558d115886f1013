package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/policy/export"
)

// policyFlags are the flags every command that loads the matrix shares.
type policyFlags struct {
	matrix string
	config string
}

func (f *policyFlags) register(cmd *cobra.Command, configHelp string) {
	cmd.Flags().StringVar(&f.matrix, "matrix", "", "load the port matrix from this file instead of the embedded Threat Prevention 7.5 matrix (the format of policy/matrix.yaml in the source)")
	cmd.Flags().StringVar(&f.config, "config", "", configHelp)
}

// matrixName names the matrix in force for a report.
func matrixName(path string) string {
	if path == "" {
		return "Netwrix Threat Prevention 7.5 (embedded)"
	}
	return path
}

// loadPolicy reads the matrix and the config and compiles them. Errors are
// printed one per line (a config may have several) and come back as an
// exitStatus with code 2.
func (a *app) loadPolicy(f *policyFlags) (*policy.Policy, error) {
	p, err := policy.Load(f.matrix, f.config)
	if err != nil {
		return nil, a.printErrors(err)
	}
	return p, nil
}

// printErrors writes err to stderr, one line per configuration error.
func (a *app) printErrors(err error) error {
	var list policy.ConfigErrors
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintf(a.stderr, "tpwatch: %s\n", e.Error())
		}
	} else {
		fmt.Fprintf(a.stderr, "tpwatch: %s\n", oneLine(err.Error()))
	}
	return &exitStatus{code: exitError, printed: true, err: err}
}

func (a *app) policyCommand() *cobra.Command {
	var (
		flags  policyFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print the port matrix tpwatch checks flows against",
		Long: `Print every rule of the port matrix, one a row: id, client role, server
role, transport, server ports, the feature that gates it, its description
and the section of the Threat Prevention documentation it comes from.

With --config, the site's SIEM ports and allow rules are included and the
FEATURE column says whether each feature is on.`,
		Example: `  tpwatch policy
  tpwatch policy --format json | jq '.[] | select(.server == "enterprise-manager")'
  tpwatch policy --config site.yaml
  tpwatch policy check --config site.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.loadPolicy(&flags)
			if err != nil {
				return err
			}
			switch format {
			case "table":
				err = policy.WriteTable(a.stdout, p.Rules(), terminalWidth(a.stdout))
			case "json":
				err = policy.WriteJSON(a.stdout, p.Rules())
			default:
				return &exitStatus{code: exitError, err: fmt.Errorf("--format %q: want table or json", format)}
			}
			if err != nil {
				return &exitStatus{code: exitError, err: fmt.Errorf("write policy: %w", err)}
			}
			return nil
		},
	}
	flags.register(cmd, "site config: includes its SIEM ports and allow rules")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.AddCommand(a.policyCheckCommand(), a.policyExportCommand())
	return cmd
}

func (a *app) policyExportCommand() *cobra.Command {
	var (
		flags                   policyFlags
		format, host, role, out string
		profile                 string
		inbound, outbound       string
	)
	cmd := &cobra.Command{
		Use:   "export --format powershell|nftables --config FILE --host ADDRESS|--role ROLE",
		Short: "Write the firewall rules a host needs according to the matrix and the inventory",
		Long: `Write the firewall rules one host needs, inbound and outbound, according to
the matrix and the site config: the rules of the roles its address holds
(--host), or of every host of a role (--role). Remote addresses are those the
config gives the peer role; a rule whose feature is off, whose peer role the
config does not name, or whose every peer is the host itself is written as a
comment saying why. Every rule carries its id and the section of the
document it comes from.

--format powershell writes a script of New-NetFirewallRule commands for
Windows Firewall: run it in an elevated PowerShell on the host (or adapt it
for a GPO). Its rules are named tpwatch-<rule id>-in|out, in one group,
which the script removes first: running it again replaces them.

--format nftables writes a ruleset for nft -f that replaces the table
inet tpwatch and nothing else. Its input chain drops what the matrix does not
allow (replies, loopback and ICMP excepted), like Windows Firewall's inbound
default; --inbound-policy accept only counts. nftables passes a packet only
when every table accepts it: where another table drops traffic, allow these
flows there too.`,
		Example: `  tpwatch policy export --format powershell --config site.yaml --host 192.0.2.10 --output em.ps1
  tpwatch policy export --format powershell --config site.yaml --role agent --profile Domain,Private
  tpwatch policy export --format nftables --config site.yaml --host 192.0.2.30 > siem.nft && nft -c -f siem.nft`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			usage := func(format string, args ...any) error {
				return &exitStatus{code: exitError, err: fmt.Errorf(format, args...)}
			}
			f, err := export.ParseFormat(format)
			if err != nil {
				return usage("%w", err)
			}
			if flags.config == "" {
				return usage("policy export needs --config FILE: the inventory says which host holds which role")
			}
			o := export.Options{Profile: profile, Version: version}
			switch {
			case (host == "") == (role == ""):
				return usage("policy export needs one of --host ADDRESS and --role ROLE")
			case host != "":
				if o.Host, err = netip.ParseAddr(host); err != nil {
					return usage("--host %q: want an IP address", host)
				}
			default:
				var ok bool
				if o.Role, ok = policy.ParseRole(role); !ok {
					return usage("--role %q: want one of %s", role, strings.Join(policy.RoleNames(), ", "))
				}
			}
			switch inbound {
			case "drop":
			case "accept":
				o.InboundAccept = true
			default:
				return usage("--inbound-policy %q: want drop or accept", inbound)
			}
			switch outbound {
			case "accept":
			case "drop":
				o.OutboundDrop = true
			default:
				return usage("--outbound-policy %q: want accept or drop", outbound)
			}
			if strings.ContainsAny(profile, " ") {
				return usage("--profile %q: Domain, Private, Public or Any, several separated by commas without spaces", profile)
			}
			p, err := a.loadPolicy(&flags)
			if err != nil {
				return err
			}
			o.Source = flags.config + " and the embedded Netwrix Threat Prevention 7.5 matrix"
			if flags.matrix != "" {
				o.Source = flags.config + " and the matrix " + flags.matrix
			}
			var buf bytes.Buffer
			if err := export.Write(&buf, p, f, o); err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			if out == "" || out == "-" {
				_, err = a.stdout.Write(buf.Bytes())
			} else {
				// Written as bytes: PowerShell's own > would re-encode the
				// script as UTF-16.
				err = os.WriteFile(out, buf.Bytes(), 0o644)
			}
			if err != nil {
				return &exitStatus{code: exitError, err: fmt.Errorf("write firewall rules: %w", err)}
			}
			return nil
		},
	}
	flags.register(cmd, "the site config whose inventory names the hosts (required)")
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "", "powershell (Windows Firewall) or nftables (required)")
	fl.StringVar(&host, "host", "", "the host's IP address: the rules of the roles it holds in the config")
	fl.StringVar(&role, "role", "", "the rules of every host of this role")
	fl.StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	fl.StringVar(&profile, "profile", export.DefaultProfile, "powershell: the Windows Firewall profiles of the rules (Domain, Private, Public, Any; several separated by commas)")
	fl.StringVar(&inbound, "inbound-policy", "drop", "nftables: what the input chain does with what no rule accepts: drop or accept")
	fl.StringVar(&outbound, "outbound-policy", "accept", "nftables: what the output chain does with what no rule accepts: accept or drop")
	return cmd
}

func (a *app) policyCheckCommand() *cobra.Command {
	var flags policyFlags
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a site config (inventory, features, SIEM ports, allow rules)",
		Long: `Validate a site config file and say precisely what is wrong and where:
every error names the file, line and column, and the fix (a misspelt role
gets the nearest valid one). Exit status 0 when the file is valid, 2 when
it is not.`,
		Example: `  tpwatch policy check --config site.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.config == "" {
				return &exitStatus{code: exitError, err: errors.New("policy check needs --config FILE")}
			}
			p, err := a.loadPolicy(&flags)
			if err != nil {
				return err
			}
			cfg := p.Config()
			hosts := 0
			for _, addrs := range cfg.Roles {
				hosts += len(addrs)
			}
			on := 0
			for _, v := range cfg.Features {
				if v {
					on++
				}
			}
			fmt.Fprintf(a.stdout, "%s: OK: %d roles with %d addresses or prefixes, %d features on, %d rules in force\n",
				flags.config, len(cfg.Roles), hosts, on, len(p.Rules()))
			a.warn(p.Warnings())
			return nil
		},
	}
	flags.register(cmd, "the site config file to check (required)")
	return cmd
}
