package main

import (
	"context"
	"errors"
	"fmt"

	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/spf13/cobra"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/replay"
)

type replayFlags struct {
	policy         policyFlags
	format         string
	all            bool
	printInventory bool
	maxFlows       int
	sequential     bool
	progress       string
	metricsOut     string
	cpuProfile     string
	memProfile     string
}

func (a *app) replayCommand() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay [flags] FILE...",
		Short: "Classify the flows of capture files against the port matrix",
		Long: `Read capture files (pcap or pcapng, optionally gzip-compressed) and
classify every TCP and UDP flow against the Threat Prevention port matrix:

  allowed     a rule allows it and it worked
  blocked     a rule requires it and it failed: refused (RST), icmp_unreachable,
              or no_response (nothing back within the attempt timeout)
  unexpected  no enabled rule allows it: feature_disabled, unauthorized_client,
              or no_rule
  pending     an attempt still inside its timeout when the capture ended, or a
              flow seen only mid-stream with nothing that shows it worked

Several files are merged into one capture by packet time, as mergecap
merges them: captures that follow one another, in whatever order the shell
gives them, and a capture split by direction or by interface. Time is packet
time, so a replay gives the same answer every time.

Without --config, the roles of the hosts are inferred from the traffic (a
host answering on 3741 is an enterprise-manager, its clients agents);
--print-inventory writes what was inferred as a config file to start from.

Exit status: 0 nothing blocked or unexpected, 1 something is, 2 bad usage or
an unreadable or corrupt capture (what could be read is still reported).`,
		Example: `  tpwatch replay capture.pcapng
  tpwatch replay --config site.yaml --format json day1.pcap.gz day2.pcap > flows.ndjson
  tpwatch replay --print-inventory capture.pcapng > site.yaml
  tpwatch replay --format json capture.pcap | jq 'select(.verdict == "blocked")'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return a.replay(cmd.Context(), &f, files)
		},
	}
	fl := cmd.Flags()
	f.policy.register(cmd, "site config (roles, features, SIEM ports, allow rules, timeouts); without it roles are inferred from the traffic")
	fl.StringVar(&f.format, "format", "", "output: table (the report, default on a terminal) or json (one object per flow, default otherwise)")
	fl.BoolVar(&f.all, "all", false, "json: also report ignored flows (traffic unrelated to Threat Prevention)")
	fl.BoolVar(&f.printInventory, "print-inventory", false, "write the inventory (given or inferred) as a config file to stdout instead of the report")
	fl.IntVar(&f.maxFlows, "max-flows", classifier.DefaultOptions().MaxFlows, "most flows followed at once; past it the oldest unanswered attempts are dropped first")
	fl.BoolVar(&f.sequential, "sequential", false, "read and classify on one goroutine (same result; for comparison and one-core machines)")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (on a terminal), always or never")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the replay to FILE (for performance work: go tool pprof)")
	fl.StringVar(&f.memProfile, "memprofile", "", "write a Go heap profile to FILE after the last packet, before the flows are flushed (for performance work: go tool pprof)")
	fl.StringVar(&f.metricsOut, "metrics-out", "", "also write the daemon's metrics for this replay to FILE, in the node_exporter textfile format (atomic write), for the Grafana dashboard")
	return cmd
}

func (a *app) replay(ctx context.Context, f *replayFlags, files []string) error {
	if f.format == "" {
		f.format = "json"
		if isTerminal(a.stdout) {
			f.format = "table"
		}
	}
	if f.format != "table" && f.format != "json" {
		return &exitStatus{code: exitError, err: fmt.Errorf("--format %q: want table or json", f.format)}
	}
	if f.maxFlows < 1 {
		return &exitStatus{code: exitError, err: fmt.Errorf("--max-flows %d: want a positive number", f.maxFlows)}
	}
	if f.progress != "auto" && f.progress != "always" && f.progress != "never" {
		return &exitStatus{code: exitError, err: fmt.Errorf("--progress %q: want auto, always or never", f.progress)}
	}
	pol, err := a.loadPolicy(&f.policy)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stopProfile, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		defer stopProfile()
	}
	cfg := replay.Config{
		Policy:     pol,
		ConfigName: f.policy.config,
		Files:      files,
		All:        f.all,
		MetricsOut: f.metricsOut,
		Version:    version,
		Revision:   revision,
		MaxFlows:   f.maxFlows,
		Sequential: f.sequential,
		Log:        a.log,
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
		if err := res.Summary.WriteTable(a.stdout, res.Header(f.policy.config)); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("write report: %w", err)}
		}
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
