package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tpwatch/tpwatch/winsvc"
)

// serviceWait is how long service start, stop and uninstall wait for the
// service to get there: the service's own start and stop wait hints, with
// room to spare.
const serviceWait = 45 * time.Second

func (a *app) serviceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service install|uninstall|start|stop|reload|status",
		Short: "Run tpwatch as a Windows service (Windows only)",
		Long: `Install, start, stop, query and remove the tpwatch Windows service, which
runs "tpwatch run" with the flags given to "service install" under the
service control manager: it starts with Windows (delayed), runs as
LocalSystem, depends on Npcap's driver, restarts after a failure, logs to
%ProgramData%\tpwatch\tpwatch.log and reports its start, stop, captures and
reloads to the Windows Event Log (source tpwatch).

Install Npcap (https://npcap.com) first: tpwatch cannot bundle it. Run these
commands from an elevated prompt. "tpwatch service reload" (or "sc control
tpwatch paramchange") reloads the config, as SIGHUP does on Linux.

On Linux, use deploy/systemd/tpwatch.service instead.`,
		Example: `  tpwatch service install --interface Ethernet0 --config C:\ProgramData\tpwatch\site.yaml
  tpwatch service start
  tpwatch service status
  tpwatch service reload              # re-read site.yaml
  tpwatch service stop
  tpwatch service uninstall`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return &exitStatus{code: exitError, err: errors.New("service needs a subcommand: install, uninstall, start, stop, reload or status")}
		},
	}
	simple := func(use, short string, do func() error, done string) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := windowsOnly(); err != nil {
					return err
				}
				if err := do(); err != nil {
					return &exitStatus{code: exitError, err: err}
				}
				fmt.Fprintln(a.stdout, done)
				return nil
			},
		}
	}
	cmd.AddCommand(
		a.serviceInstallCommand(),
		simple("uninstall", "Stop and remove the service and its Event Log source (the config and log stay)",
			func() error { return winsvc.Uninstall(serviceWait) }, "service "+winsvc.Name+" removed"),
		simple("start", "Start the service and wait until it runs",
			func() error { return winsvc.Start(serviceWait) }, "service "+winsvc.Name+" running"),
		simple("stop", "Stop the service and wait until it has stopped",
			func() error { return winsvc.StopService(serviceWait) }, "service "+winsvc.Name+" stopped"),
		simple("reload", "Make the running service read its config again (as SIGHUP does on Linux)",
			winsvc.Reload, "asked service "+winsvc.Name+" to reload its config (the log and tpwatch_config_last_reload_successful say how it went)"),
		a.serviceStatusCommand(),
	)
	return cmd
}

func windowsOnly() error {
	if runtime.GOOS != "windows" {
		return &exitStatus{code: exitError, err: winsvc.ErrNotWindows}
	}
	return nil
}

func (a *app) serviceInstallCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "install [run flags]",
		Short: "Install the service running `tpwatch run` with these flags",
		Long: `Install the tpwatch service. The flags are those of "tpwatch run"
(see tpwatch run --help); --interface is required. Without --config, the
service reads %ProgramData%\tpwatch\site.yaml when that file exists, and
infers the inventory from the traffic otherwise; without --log.file it logs
to %ProgramData%\tpwatch\tpwatch.log. Relative paths are made absolute (a
service starts in System32). The service runs this tpwatch.exe where it is:
copy it to its final place (C:\Program Files\tpwatch) first.`,
		Example: `  tpwatch service install --interface Ethernet0
  tpwatch service install --interface "Ethernet 2" --config C:\ProgramData\tpwatch\site.yaml --web.listen-address :19740`,
		// The run command's flags are parsed below, by the run command.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, arg := range args {
				if arg == "-h" || arg == "--help" {
					return cmd.Help()
				}
			}
			if err := windowsOnly(); err != nil {
				return err
			}
			runArgs, notes, err := serviceRunArgs(args)
			if err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			exe, err := os.Executable()
			if err == nil {
				exe, err = filepath.EvalSymlinks(exe)
			}
			if err != nil {
				return &exitStatus{code: exitError, err: fmt.Errorf("find tpwatch.exe: %w", err)}
			}
			if err := os.MkdirAll(winsvc.DataDir(), 0o755); err != nil {
				return &exitStatus{code: exitError, err: fmt.Errorf("create %s: %w", winsvc.DataDir(), err)}
			}
			more, err := winsvc.Install(winsvc.InstallOptions{Exe: exe, Args: runArgs})
			if err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			for _, n := range append(notes, more...) {
				fmt.Fprintf(a.stderr, "tpwatch: note: %s\n", n)
			}
			fmt.Fprintf(a.stdout, "service %s installed: %s %s\nstart it with: tpwatch service start\n", winsvc.Name, exe, strings.Join(runArgs, " "))
			return nil
		},
	}
}

// pathFlags are the run flags that name files: a service starts in
// System32, so they are made absolute at install.
var pathFlags = map[string]bool{"config": true, "matrix": true, "web.config.file": true, "log.file": true}

// serviceRunArgs checks the run flags of `service install` with the run
// command itself and returns the service's arguments ("run" and the flags,
// file paths absolute, the config and log defaults added) and notes for
// the user.
func serviceRunArgs(args []string) ([]string, []string, error) {
	probe := &app{}
	root := probe.rootCommand()
	runCmd, _, err := root.Find([]string{"run"})
	if err != nil {
		return nil, nil, err
	}
	fl := runCmd.Flags()
	if err := runCmd.ParseFlags(args); err != nil {
		return nil, nil, fmt.Errorf("service install: %w (the flags are those of tpwatch run)", err)
	}
	if rest := fl.Args(); len(rest) > 0 {
		return nil, nil, fmt.Errorf("service install: unexpected argument %q (the flags are those of tpwatch run)", rest[0])
	}
	if ifaces, _ := fl.GetStringArray("interface"); len(ifaces) == 0 {
		return nil, nil, errors.New("service install needs --interface (tpwatch interfaces lists them), for example --interface Ethernet0")
	}
	if u, _ := fl.GetString("user"); u != "" {
		return nil, nil, errors.New("service install: --user is for Linux; the service runs as LocalSystem")
	}
	var notes []string
	if !fl.Changed("config") {
		if _, err := os.Stat(winsvc.DefaultConfigFile()); err == nil {
			if err := fl.Set("config", winsvc.DefaultConfigFile()); err != nil {
				return nil, nil, err
			}
		} else {
			notes = append(notes, fmt.Sprintf("no --config and no %s: the service will infer the inventory from the traffic; write that file and reinstall to use a site config", winsvc.DefaultConfigFile()))
		}
	}
	if !fl.Changed("log.file") {
		if err := fl.Set("log.file", winsvc.DefaultLogFile()); err != nil {
			return nil, nil, err
		}
	}
	out := []string{"run"}
	var bad error
	fl.VisitAll(func(f *pflag.Flag) {
		if !f.Changed || bad != nil {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				out = append(out, "--"+f.Name, v)
			}
			return
		}
		v := f.Value.String()
		if pathFlags[f.Name] && v != "" {
			abs, err := filepath.Abs(v)
			if err != nil {
				bad = fmt.Errorf("--%s %s: %w", f.Name, v, err)
				return
			}
			v = abs
		}
		if f.Value.Type() == "bool" {
			out = append(out, "--"+f.Name+"="+v)
			return
		}
		out = append(out, "--"+f.Name, v)
	})
	if bad != nil {
		return nil, nil, bad
	}
	return out, notes, nil
}

func (a *app) serviceStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Say whether the service runs, how it is installed, and whether Npcap's driver runs",
		Long: `Print the service's state, process, start type, command line, account and
dependencies, and the state of Npcap's driver service. Exit status: 0 when
the service runs, 1 when it is installed but not running, 2 when it is not
installed or cannot be queried.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := windowsOnly(); err != nil {
				return err
			}
			info, err := winsvc.Query()
			if err != nil {
				return &exitStatus{code: exitError, err: err}
			}
			state := winsvc.StateName(info.State)
			if info.State == winsvc.Running {
				state += fmt.Sprintf(" (pid %d)", info.PID)
			} else if info.ExitCode != 0 {
				state += fmt.Sprintf(" (last exit code %d: see the Event Log and the log file)", info.ExitCode)
			}
			start := "manual"
			if info.Automatic {
				start = "automatic"
				if info.Delayed {
					start += " (delayed)"
				}
			}
			account := info.Account
			if account == "" {
				account = "LocalSystem"
			}
			npcap := info.Npcap
			if info.NpcapService != "" {
				npcap = fmt.Sprintf("%s (driver service %s)", info.Npcap, info.NpcapService)
			} else {
				npcap += ": install it from https://npcap.com"
			}
			fmt.Fprintf(a.stdout, "service:      %s\nstate:        %s\nstart:        %s\naccount:      %s\ncommand:      %s\ndepends on:   %s\nNpcap:        %s\nlog:          %s\n",
				winsvc.Name, state, start, account, info.Command, strings.Join(info.Dependencies, ", "), npcap, winsvc.DefaultLogFile())
			if info.State != winsvc.Running {
				return &exitStatus{code: exitProblems}
			}
			return nil
		},
	}
}
