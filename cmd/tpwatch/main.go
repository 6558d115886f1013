// Command tpwatch watches network traffic and tells, for every flow,
// whether the Netwrix Threat Prevention firewall matrix allows it, requires
// it while the network blocks it, or does not know it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit statuses of DESIGN.md: 0 nothing blocked or unexpected, 1 something
// is, 2 bad usage or unreadable input.
const (
	exitOK       = 0
	exitProblems = 1
	exitError    = 2
)

// version, revision, branch and buildDate are set at build time with
// -ldflags -X (see the Makefile).
var (
	version   = "dev"
	revision  = "unknown"
	branch    = "unknown"
	buildDate = "unknown"
)

// exitStatus carries a status other than 0 or 2 out of a command, and
// errors that were already printed (each on its own line) so main only
// has to set the status.
type exitStatus struct {
	code    int
	printed bool
	err     error
}

func (e *exitStatus) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitStatus) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status; it is main
// without os.Exit, so tests run the real command in-process.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run until ctx is done, for tests of commands that run
// until interrupted (observe --follow).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &app{stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var st *exitStatus
	if errors.As(err, &st) {
		if !st.printed && st.err != nil {
			fmt.Fprintf(stderr, "tpwatch: %s\n", oneLine(st.err.Error()))
		}
		return st.code
	}
	// Usage errors from flag parsing and argument checks.
	fmt.Fprintf(stderr, "tpwatch: %s\n", oneLine(err.Error()))
	if strings.Contains(err.Error(), "flag") || strings.Contains(err.Error(), "arg") || strings.Contains(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "Run 'tpwatch --help' or 'tpwatch <command> --help' for usage.\n")
	}
	return exitError
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// app holds what the commands share: the output streams and the logger.
type app struct {
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
	log            zerolog.Logger
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tpwatch",
		Short: "Passive compliance monitor for the Netwrix Threat Prevention port matrix",
		Long: `tpwatch watches network traffic and tells, for every flow, whether the
documented Netwrix Threat Prevention firewall matrix allows it (allowed),
requires it while the network blocks it (blocked: no answer, RST, ICMP
unreachable), or does not know it (unexpected).

Start with a capture file, then watch live traffic:

  tpwatch replay capture.pcapng                 # report, roles inferred from the traffic
  tpwatch replay --config site.yaml capture.pcap
  tpwatch policy                                # the documented port matrix
  tpwatch policy check --config site.yaml       # validate a site config
  tpwatch interfaces                            # the interfaces run can capture on
  sudo tpwatch run --interface eth0 --config site.yaml   # daemon, metrics on :19740
  tpwatch observe --follow                      # its blocked and unexpected flows as they come
  tpwatch service install --interface Ethernet0 # Windows: the daemon as a service
  tpwatch policy export --format powershell --config site.yaml --host 192.0.2.10

Exit status: 0 nothing blocked or unexpected, 1 something is, 2 bad usage
or unreadable input.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setupLogging()
		},
	}
	root.SetVersionTemplate("tpwatch {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&a.logLevel, "log.level", "info", "diagnostics on stderr at this level or above: debug, info, warn, error")
	pf.StringVar(&a.logFormat, "log.format", "auto", "diagnostics format: json, console, or auto (console on a terminal, else json)")
	root.AddCommand(a.replayCommand(), a.runCommand(), a.observeCommand(), a.interfacesCommand(), a.policyCommand(), a.serviceCommand(), a.versionCommand())
	return root
}

func (a *app) setupLogging() error {
	level, err := zerolog.ParseLevel(a.logLevel)
	if err != nil || a.logLevel == "" {
		return &exitStatus{code: exitError, err: fmt.Errorf("--log.level %q: want debug, info, warn or error", a.logLevel)}
	}
	var w io.Writer = a.stderr
	switch a.logFormat {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: a.stderr, NoColor: !isTerminal(a.stderr)}
	case "auto":
		if isTerminal(a.stderr) {
			w = zerolog.ConsoleWriter{Out: a.stderr}
		}
	default:
		return &exitStatus{code: exitError, err: fmt.Errorf("--log.format %q: want json, console or auto", a.logFormat)}
	}
	a.log = zerolog.New(w).Level(level).With().Timestamp().Logger()
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is the width the report is laid out in: the terminal's,
// else $COLUMNS, else 100 (a report redirected to a file or pasted into a
// ticket).
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 100
}

// warn writes warnings on stderr, one line each; they change no exit
// status.
func (a *app) warn(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "tpwatch: warning: %s\n", w)
	}
}

// versionText is the version report, in the layout of the Prometheus
// exporters' --version (prometheus/common/version), which people who run
// exporters know.
func versionText() string {
	return fmt.Sprintf("tpwatch, version %s (branch: %s, revision: %s)\n"+
		"  build date:       %s\n"+
		"  go version:       %s\n"+
		"  platform:         %s/%s\n",
		version, branch, revision, buildDate, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, revision, branch, build date and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(a.stdout, versionText())
		},
	}
}
