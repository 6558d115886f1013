package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"
	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
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

Several files are read in the order given, as one capture. Time is packet
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
	pol, _, err := a.loadPolicy(&f.policy)
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

	var stats pipeline.SourceStats
	summary := report.NewSummary(pol.Rules())
	var sink classifier.Sink = summary
	var jsonOut *report.JSONWriter
	if f.format == "json" && !f.printInventory {
		jsonOut = report.NewJSONWriter(a.stdout, pol.Rules(), f.all)
		sink = teeSink{summary, jsonOut}
	}
	var table *classifier.Table
	var replayMetricsSink *replayMetrics
	if f.metricsOut != "" {
		// A path that cannot be written is a usage error, found before a
		// long replay rather than after it.
		if err := checkWritableDir(f.metricsOut); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("--metrics-out %s: %w", f.metricsOut, err)}
		}
		replayMetricsSink, err = newReplayMetrics(pol.Rules(), &stats, func() *classifier.Table { return table })
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		sink = append(teeSink{sink}, replayMetricsSink)
	}
	opts := classifier.OptionsFor(pol.Timeouts())
	opts.MaxFlows = f.maxFlows
	deferred := pipeline.NewDeferredSink(sink)
	table = classifier.NewTable(opts, pol, deferred.TableSink())

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	stopProgress := a.startProgress(f.progress, &stats, files)
	files = a.inTimeOrder(files)
	var readErrs []error
	for _, name := range files {
		if err := a.replayFile(ctx, name, table, &stats, pipeline.Options{Sequential: f.sequential, Deferred: deferred}); err != nil {
			readErrs = append(readErrs, err)
		}
		if ctx.Err() != nil {
			readErrs = append(readErrs, fmt.Errorf("interrupted: flows after %s were not read", name))
			break
		}
	}
	stopProgress()
	if f.memProfile != "" {
		if err := writeHeapProfile(f.memProfile); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
	}
	table.Flush(stats.LastTS.Load())

	if jsonOut != nil {
		if err := jsonOut.Flush(); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("write output: %w", err)}
		}
	}
	switch {
	case f.printInventory:
		if err := policy.WriteConfig(a.stdout, pol.InventoryConfig()); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("write inventory: %w", err)}
		}
	case f.format == "table" && stats.Records.Load() == 0 && len(readErrs) > 0:
		// Nothing could be read: the errors below say why, an empty
		// report would only hide them.
	case f.format == "table":
		h := report.Header{Files: files, Packets: stats.Records.Load(), Inventory: inventoryLine(pol, f.policy.config)}
		if err := summary.WriteTable(a.stdout, h); err != nil {
			return &exitStatus{code: exitError, err: fmt.Errorf("write report: %w", err)}
		}
	}
	if replayMetricsSink != nil {
		if err := replayMetricsSink.write(f.metricsOut); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
	}
	a.logSummary(&stats, table)
	if len(readErrs) > 0 {
		for _, err := range readErrs {
			fmt.Fprintf(a.stderr, "tpwatch: %s\n", oneLine(err.Error()))
		}
		return &exitStatus{code: exitError, printed: true, err: errors.Join(readErrs...)}
	}
	// --print-inventory is for writing a config file: its status says
	// whether that worked, not what the traffic did.
	if summary.Problems() > 0 && !f.printInventory {
		return &exitStatus{code: exitProblems}
	}
	return nil
}

func (a *app) replayFile(ctx context.Context, name string, table *classifier.Table, stats *pipeline.SourceStats, opts pipeline.Options) error {
	src, err := capture.OpenFile(name)
	if err != nil {
		return err
	}
	defer src.Close()
	before, unsupportedBefore := stats.Records.Load(), stats.Unsupported.Load()
	err = pipeline.Run(ctx, src, table, stats, opts)
	if err != nil {
		return fmt.Errorf("%w (the %d packets before it were classified)", err, stats.Records.Load()-before)
	}
	if n := stats.Unsupported.Load() - unsupportedBefore; n > 0 {
		return fmt.Errorf("%s: %d of %d packets have link type %s, which tpwatch does not decode (it reads Ethernet, 802.1Q/QinQ, Linux SLL and SLL2, raw IPv4/IPv6 and BSD loopback)",
			name, n, stats.Records.Load()-before, capture.LinkType(stats.UnsupportedLink.Load()))
	}
	return nil
}

func inventoryLine(p *policy.Policy, config string) string {
	if p.Inferred() {
		inv := p.InventoryConfig()
		hosts := 0
		for _, addrs := range inv.Roles {
			hosts += len(addrs)
		}
		if hosts == 0 {
			return "inferred from the traffic: no Threat Prevention host seen (pass --config to name them)"
		}
		return fmt.Sprintf("inferred from the traffic: %d host(s) in %d role(s) (--print-inventory writes it as a config file to check and pass with --config)",
			hosts, len(inv.Roles))
	}
	return "from " + config
}

func (a *app) logSummary(stats *pipeline.SourceStats, table *classifier.Table) {
	ts := table.Stats()
	a.log.Debug().
		Uint64("packets", stats.Records.Load()).
		Uint64("not_ip", stats.NotIP.Load()).
		Uint64("decode_errors", stats.DecodeErrors()).
		Uint64("flows", ts.FlowsCreated).
		Uint64("evicted", ts.FlowsEvicted).
		Uint64("fragments", ts.Fragments).
		Uint64("table_capacity", ts.Capacity).
		Uint64("expired", ts.FlowsExpired).
		Uint64("peak_rss_bytes", peakRSS()).
		Msg("replay done")
	if n := stats.DecodeErrors(); n > 0 {
		a.log.Warn().Uint64("truncated", stats.Truncated.Load()).Uint64("malformed", stats.Malformed.Load()).
			Uint64("unsupported_link", stats.Unsupported.Load()).Msg("some packets could not be decoded and were skipped")
	}
	if ts.FlowsEvicted > 0 {
		a.log.Warn().Uint64("evicted", ts.FlowsEvicted).Msg("the flow table was full; raise --max-flows")
	}
}

// startProgress prints a progress line to stderr once a second while
// replay runs, when stderr is a terminal (or --progress always).
func (a *app) startProgress(mode string, stats *pipeline.SourceStats, files []string) (stop func()) {
	if mode == "never" || (mode == "auto" && !isTerminal(a.stderr)) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(a.stderr, "\r\033[K")
				return
			case <-tick.C:
				n := stats.Records.Load()
				el := time.Since(start).Seconds()
				fmt.Fprintf(a.stderr, "\r\033[Kreplay: %d packets, %.1f MB, %.2f Mpps", n, float64(stats.Bytes.Load())/1e6, float64(n)/el/1e6)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// teeSink hands every flow to several sinks, in order.
type teeSink []classifier.Sink

func (t teeSink) Decided(r *classifier.FlowRecord) {
	for _, s := range t {
		s.Decided(r)
	}
}

func (t teeSink) Final(r *classifier.FlowRecord) {
	for _, s := range t {
		s.Final(r)
	}
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

// inTimeOrder returns the files in the order of their first packet, as
// mergecap would: packet time must not run backwards across files, or
// flows of a later-read, earlier file look long overdue. Shell globs sort
// cap_10 before cap_9, and ring buffers wrap. A file whose first packet
// cannot be read keeps its place relative to the others at the end, where
// reading it reports the error.
func (a *app) inTimeOrder(files []string) []string {
	if len(files) < 2 {
		return files
	}
	type dated struct {
		name string
		ts   int64
		ok   bool
	}
	list := make([]dated, len(files))
	for i, name := range files {
		list[i] = dated{name: name}
		src, err := capture.OpenFile(name)
		if err != nil {
			continue
		}
		var rec capture.Record
		if src.Next(&rec) == nil {
			list[i].ts, list[i].ok = rec.TS, true
		}
		src.Close()
	}
	slices.SortStableFunc(list, func(x, y dated) int {
		if x.ok != y.ok {
			if x.ok {
				return -1
			}
			return 1
		}
		return cmp.Compare(x.ts, y.ts)
	})
	ordered := make([]string, len(list))
	moved := false
	for i, d := range list {
		ordered[i] = d.name
		moved = moved || d.name != files[i]
	}
	if moved {
		a.log.Info().Strs("files", ordered).Msg("reading the files in the order of their first packet")
	}
	return ordered
}

// checkWritableDir checks that a file can be created beside path, as the
// atomic write of the textfile will do.
func checkWritableDir(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tpwatch-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
