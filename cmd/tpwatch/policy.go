package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/tpwatch/tpwatch/policy"
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
	cmd.AddCommand(a.policyCheckCommand())
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
