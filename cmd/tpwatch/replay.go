package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/spf13/cobra"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/internal/texttable"
	"github.com/tpwatch/tpwatch/replay"
	"github.com/tpwatch/tpwatch/report"
)

type replayFlags struct {
	policy         policyFlags
	format         string
	all            bool
	printInventory bool
	by             string
	hosts          []string
	rules          []string
	verdicts       []string
	since, until   string
	maxFlows       int
	headersOnly    bool
	rpcStrict      bool
	sequential     bool
	progress       string
	metricsOut     string
	cpuProfile     string
	memProfile     string
	formatGiven    bool // --format was given, not taken from the output
}

func (a *app) replayCommand() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay [flags] FILE...",
		Short: "Classify the flows of capture files against the port matrix",
		Long: `Read capture files (pcap or pcapng, optionally gzip-compressed; - reads
standard input) and classify every TCP and UDP flow against the Threat
Prevention port matrix:

  allowed     a rule allows it and it worked
  blocked     a rule requires it and it failed: refused (RST), icmp_unreachable,
              or no_response (nothing back within the attempt timeout)
  unexpected  no enabled rule allows it and it concerns Threat Prevention:
              feature_disabled, unauthorized_client or no_rule; its outcome
              says whether the client got in
  pending     an attempt still inside its timeout when the capture ended, or a
              flow seen only mid-stream with nothing that shows it worked
  ignored     not Threat Prevention's (counted; --all reports them in JSON)

Several files are merged into one capture by packet time, as mergecap
merges them: captures that follow one another, in whatever order the shell
gives them, and a capture split by direction or by interface. Time is packet
time, so a replay gives the same answer every time.

Without --config, the roles of the hosts are inferred from the traffic, from
evidence only (a host that answers on 3741 is an enterprise-manager, a host
whose flow to it then worked an agent); --print-inventory writes what was
inferred, with the evidence, as a config file to start from.

The report (--format table, the default on a terminal) fits the terminal's
width; --by host shows the problems host by host. --format html writes the
same report as one self-contained page (no script, nothing fetched, it
prints): verdicts, a timeline, the rules, the matrix role by role, what to
open, host by host, the inventory with its evidence. --host, --rule, --verdict,
--since and --until keep only the flows they match, in the report and the
JSON alike.

Exit status: 0 nothing blocked or unexpected, 1 something is, 2 bad usage or
an unreadable or corrupt capture (what could be read is still reported).`,
		Example: `  tpwatch replay capture.pcapng
  tpwatch replay --config site.yaml --format json day1.pcap.gz day2.pcap > flows.ndjson
  tpwatch replay --print-inventory capture.pcapng > site.yaml
  tpwatch replay --config site.yaml --by host --host 198.51.100.0/24 capture.pcapng
  tpwatch replay --format json --verdict blocked,unexpected capture.pcap | jq .
  tpwatch replay --config site.yaml --format html capture.pcapng > report.html
  tcpdump -i eth0 -w - | tpwatch replay --format json -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return a.replay(cmd.Context(), &f, files)
		},
	}
	fl := cmd.Flags()
	f.policy.register(cmd, "site config (roles, features, SIEM ports, allow and ignore rules, timeouts); without it roles are inferred from the traffic")
	fl.StringVar(&f.format, "format", "", "output: table (the report, default on a terminal), json (one object per flow, default otherwise) or html (the report as one self-contained page)")
	fl.BoolVar(&f.all, "all", false, "json: also report ignored flows (traffic unrelated to Threat Prevention)")
	fl.BoolVar(&f.printInventory, "print-inventory", false, "write the inventory (given, or inferred with its evidence) as a config file to stdout instead of the report")
	fl.StringVar(&f.by, "by", "rule", "table: show the problems rule by rule (rule) or host by host (host)")
	fl.StringArrayVar(&f.hosts, "host", nil, "report only flows with an end in this address or prefix (repeatable, or comma-separated)")
	fl.StringArrayVar(&f.rules, "rule", nil, "report only flows of this rule id (repeatable, or comma-separated)")
	fl.StringArrayVar(&f.verdicts, "verdict", nil, "report only flows of this verdict: allowed, blocked, unexpected, pending, ignored (repeatable, or comma-separated)")
	fl.StringVar(&f.since, "since", "", "report only flows seen at or after this time (RFC 3339, such as 2026-01-05T09:00:00Z)")
	fl.StringVar(&f.until, "until", "", "report only flows that started at or before this time (RFC 3339)")
	fl.IntVar(&f.maxFlows, "max-flows", classifier.DefaultOptions().MaxFlows, "most flows followed at once; past it decided flows and unanswered attempts are dropped first, established sessions last")
	fl.BoolVar(&f.headersOnly, "headers-only", false, "read no payload byte: learn no port from the endpoint mapper or SQL Browser, name no application protocol")
	fl.BoolVar(&f.rpcStrict, "rpc-strict", false, "report flows a dynamic RPC rule admits by its range alone, with no endpoint mapper answer seen, as unexpected/rpc_unannounced")
	fl.BoolVar(&f.sequential, "sequential", false, "read and classify on one goroutine (same result; for comparison and one-core machines)")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (on a terminal), always or never")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the replay to FILE (for performance work: go tool pprof)")
	fl.StringVar(&f.memProfile, "memprofile", "", "write a Go heap profile to FILE after the last packet, before the flows are flushed (for performance work: go tool pprof)")
	fl.StringVar(&f.metricsOut, "metrics-out", "", "also write the daemon's metrics for this replay to FILE, in the node_exporter textfile format (atomic write), for the Grafana dashboard")
	return cmd
}

// check refuses flags that do nothing in the mode asked, and returns the
// filter the others make.
func (f *replayFlags) check(files []string) (report.Filter, error) {
	var filter report.Filter
	switch {
	case f.format != "table" && f.format != "json" && f.format != "html":
		return filter, fmt.Errorf("--format %q: want table, json or html", f.format)
	case f.rpcStrict && f.headersOnly:
		return filter, errors.New("--rpc-strict needs the endpoint mapper's answers, which --headers-only does not read")
	case f.maxFlows < 1:
		return filter, fmt.Errorf("--max-flows %d: want a positive number", f.maxFlows)
	case f.progress != "auto" && f.progress != "always" && f.progress != "never":
		return filter, fmt.Errorf("--progress %q: want auto, always or never", f.progress)
	case f.by != "rule" && f.by != "host":
		return filter, fmt.Errorf("--by %q: want rule or host", f.by)
	case f.printInventory && f.formatGiven && f.format == "json":
		return filter, errors.New("--print-inventory writes a YAML config file: leave out --format json")
	case f.all && f.format != "json":
		return filter, errors.New("--all reports ignored flows one by one in --format json; the table already counts them on its Verdicts line")
	case f.by != "rule" && f.format != "table":
		return filter, errors.New("--by applies to the table report (--format table); the HTML page has both views")
	case slices.Contains(files, replay.Stdin) && len(files) > 1:
		// Several files are merged by packet time, which reads each one's
		// first packet before it reads the file: a pipe cannot be read twice.
		return filter, errors.New("- (standard input) is replayed alone: several files are merged by packet time, which a pipe cannot be")
	}
	var err error
	if filter.Hosts, err = report.ParseHosts(f.hosts); err != nil {
		return filter, fmt.Errorf("--host: %w", err)
	}
	if filter.Verdicts, err = report.ParseVerdicts(f.verdicts); err != nil {
		return filter, fmt.Errorf("--verdict: %w", err)
	}
	for _, r := range f.rules {
		filter.Rules = append(filter.Rules, strings.Split(r, ",")...)
	}
	for _, t := range []struct {
		flag, text string
		into       *time.Time
	}{{"--since", f.since, &filter.Since}, {"--until", f.until, &filter.Until}} {
		if t.text == "" {
			continue
		}
		if *t.into, err = time.Parse(time.RFC3339Nano, t.text); err != nil {
			return filter, fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-01-05T09:00:00Z", t.flag, t.text)
		}
	}
	return filter, nil
}

func (a *app) replay(ctx context.Context, f *replayFlags, files []string) error {
	f.formatGiven = f.format != ""
	if f.format == "" {
		f.format = "json"
		if isTerminal(a.stdout) {
			f.format = "table"
		}
	}
	filter, err := f.check(files)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	pol, err := a.loadPolicy(&f.policy)
	if err != nil {
		return err
	}
	a.warn(pol.Warnings())
	if f.cpuProfile != "" {
		stopProfile, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		defer stopProfile()
	}
	cfg := replay.Config{
		Policy:      pol,
		ConfigName:  f.policy.config,
		Files:       files,
		All:         f.all,
		Filter:      filter,
		MetricsOut:  f.metricsOut,
		Version:     version,
		Revision:    revision,
		MaxFlows:    f.maxFlows,
		HeadersOnly: f.headersOnly,
		RPCStrict:   f.rpcStrict,
		Sequential:  f.sequential,
		Log:         a.log,
	}
	if f.format == "json" && !f.printInventory {
		cfg.JSON = a.stdout
	}
	if f.progress == "always" || f.progress == "auto" && isTerminal(a.stderr) {
		cfg.Progress = a.printProgress
	}
	var heapErr error
	if f.memProfile != "" {
		cfg.AfterRead = func() { heapErr = writeHeapProfile(f.memProfile) }
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	res, err := replay.Run(ctx, cfg)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if heapErr != nil {
		return &exitStatus{code: exitError, err: heapErr}
	}
	switch {
	case f.printInventory:
		if err := res.WriteInventory(a.stdout); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("write inventory: %w", err)}
		}
	case f.format == "table" && res.Counts.Records == 0 && len(res.ReadErrors) > 0:
		// Nothing could be read: the errors below say why, an empty
		// report would only hide them.
	case f.format == "table":
		v := res.Summary.View(res.Header(f.policy.config), report.TextLines)
		o := report.TextOptions{Width: terminalWidth(a.stdout), Color: texttable.ColorWanted(isTerminal(a.stdout)), ByHost: f.by == "host"}
		if err := v.WriteText(a.stdout, o); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("write report: %w", err)}
		}
	case f.format == "html":
		// The page is written even when nothing could be read: it says
		// so at the top, and a ticket gets a file either way.
		start := time.Now()
		h := res.Header(f.policy.config)
		h.Version, h.Matrix = version, matrixName(f.policy.matrix)
		out := &countingWriter{w: a.stdout}
		if err := res.Summary.ViewLimits(h, report.HTMLLimits).WriteHTML(out, report.HTMLOptions{}); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		a.log.Debug().Int64("bytes", out.n).Dur("took", time.Since(start)).Msg("html report written")
	}
	if len(res.ReadErrors) > 0 {
		for _, err := range res.ReadErrors {
			fmt.Fprintf(a.stderr, "tpwatch: %s\n", oneLine(err.Error()))
		}
		return &exitStatus{code: exitError, printed: true, err: errors.Join(res.ReadErrors...)}
	}
	// --print-inventory is for writing a config file: its status says
	// whether that worked, not what the traffic did.
	if res.Summary.Problems() > 0 && !f.printInventory {
		return &exitStatus{code: exitProblems}
	}
	return nil
}

// countingWriter counts what goes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// printProgress shows a replay's progress on one line of stderr, and
// clears it at the end.
func (a *app) printProgress(p replay.Progress, done bool) {
	if done {
		fmt.Fprint(a.stderr, "\r\033[K")
		return
	}
	fmt.Fprintf(a.stderr, "\r\033[Kreplay: %d packets, %.1f MB, %.2f Mpps", p.Packets, float64(p.Bytes)/1e6, float64(p.Packets)/p.Elapsed.Seconds()/1e6)
}

func startCPUProfile(path string) (stop func(), err error) {
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}

func writeHeapProfile(path string) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(out, 0); err != nil {
		out.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return nil
}
