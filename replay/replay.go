package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/pipeline"
	"github.com/tpwatch/tpwatch/policy"
	"github.com/tpwatch/tpwatch/report"
)

// Config is what a replay is asked to do.
type Config struct {
	// Policy is the matrix and site config to classify with (policy.Load).
	// Without a site config the inventory is inferred from the capture.
	Policy *policy.Policy
	// ConfigName names the site config in the report ("" when inferred).
	ConfigName string
	// Files are the capture files; see Run for their order.
	Files []string

	// JSON, when set, receives one JSON object per reported flow
	// (NDJSON); All also reports the ignored flows.
	JSON io.Writer
	All  bool
	// MetricsOut, when set, is a file that receives the daemon's metrics
	// for this replay, in the node_exporter textfile format.
	MetricsOut string
	// Version and Revision are exported in tpwatch_build_info.
	Version, Revision string

	// Filter, when not empty, keeps only the flows it matches in the
	// summary and the JSON lines (the metrics textfile counts every flow,
	// as the daemon would).
	Filter report.Filter

	// MaxFlows bounds the flow table (0: the classifier's default).
	MaxFlows int
	// HeadersOnly turns payload inspection off: no port is learned from
	// an endpoint mapper or SQL Browser, no application protocol named.
	HeadersOnly bool
	// RPCStrict reports flows a dynamic RPC rule admits by its range
	// alone, with no endpoint mapper answer seen, as
	// unexpected/rpc_unannounced.
	RPCStrict bool
	// Sequential reads and classifies on one goroutine (same result).
	Sequential bool

	// Progress, when set, is called about once a second while the files
	// are read, and once with done set after the last.
	Progress func(p Progress, done bool)
	// AfterRead, when set, is called after the last packet is read and
	// before the flows still open are ended (a heap profile is taken
	// there).
	AfterRead func()
	// Log receives diagnostics (the order of the files, a full table).
	Log zerolog.Logger
}

// Progress is how far a replay has come.
type Progress struct {
	Packets, Bytes uint64
	Elapsed        time.Duration
}

// Result is what a replay found.
type Result struct {
	// Summary holds the flows' verdicts, for the report and the exit
	// status (Summary.Problems).
	Summary *report.Summary
	// Files are the files in the order of their first packet.
	Files []string
	// Counts are what was read and decoded, Table the flow table's stats.
	Counts pipeline.Counts
	Table  classifier.Stats
	// Inferred says the inventory was learned from the capture (see
	// Inventory).
	Inferred bool
	// ReadErrors say which files could not be read, or not to their end
	// (every packet before the error was classified), and whether the
	// replay was interrupted.
	ReadErrors []error

	pol *policy.Policy
	inv *policy.Inventory // the learned inventory, when Inferred
}

// WriteInventory writes the inventory as a config file to start from: a
// learned one with the evidence for each host and what it could not
// decide, as comments.
func (r *Result) WriteInventory(w io.Writer) error {
	if r.inv != nil {
		return policy.WriteInventory(w, r.inv)
	}
	return policy.WriteConfig(w, r.pol.InventoryConfig())
}

// Inventory returns the inventory the flows were classified with: the
// site config's, or the one learned from the capture when Inferred.
func (r *Result) Inventory() *policy.Config {
	if r.inv != nil {
		return r.inv.Config()
	}
	return r.pol.InventoryConfig()
}

// Header is the report's description of the input: the files, what could
// not be read of them, where the roles came from, and the final inventory,
// so that a host shows the same roles throughout the report.
func (r *Result) Header(configName string) report.Header {
	h := report.Header{Files: r.Files, Packets: r.Counts.Records, Inventory: r.inventoryLine(configName),
		Roles: policy.Bind(r.pol, r.inv).Roles, Inferred: r.Inferred}
	for _, err := range r.ReadErrors {
		h.Problems = append(h.Problems, err.Error())
	}
	var evidence map[netip.Addr]map[policy.Role]string
	if r.inv != nil {
		h.Undecided = r.inv.Undecided()
		evidence = r.inv.Evidence()
	}
	h.Hosts, h.MoreHosts, h.InventoryRoles = report.InventoryHosts(r.Inventory(), evidence, report.MaxInventoryHosts)
	c := &r.Counts
	name := strings.Join(r.Files, ", ")
	h.Captures = []report.CaptureHealth{{Name: name, Packets: c.Records, Bytes: c.Bytes, NotIP: c.NotIP,
		Truncated: c.Truncated, Malformed: c.Malformed, Unsupported: c.Unsupported}}
	return h
}

func (r *Result) inventoryLine(configName string) string {
	if !r.Inferred {
		return "from " + configName
	}
	inv := r.Inventory()
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

// Run replays cfg.Files as one capture: it classifies every flow, writes
// the JSON lines and the metrics textfile asked for, and returns what it
// found. Several files are merged record by record in packet time, as
// mergecap merges them: captures that follow one another in any order
// (shell globs sort cap_10 before cap_9, and ring buffers wrap), and
// captures of one conversation split by direction or by interface, are
// one capture again. An error is returned for what makes the replay
// impossible (a metrics file that cannot be written); files that cannot be
// read, or not to their end, are in Result.ReadErrors, after what could be
// read. Cancelling ctx stops reading; the flows read so far are still
// reported.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Policy == nil {
		return nil, errors.New("replay: no policy")
	}
	pol := cfg.Policy
	var inv *policy.Inventory
	if pol.Inferred() {
		inv = policy.NewInventory(0)
	}
	res := &Result{Summary: report.NewSummary(pol.Rules()), Inferred: pol.Inferred(), pol: pol, inv: inv}
	reported := teeSink{res.Summary}
	var jsonOut *report.JSONWriter
	if cfg.JSON != nil {
		jsonOut = report.NewJSONWriter(cfg.JSON, pol.Rules(), cfg.All)
		reported = append(reported, jsonOut)
	}
	var sinks teeSink
	if cfg.Filter.Empty() {
		sinks = reported
	} else {
		sinks = teeSink{&filtered{f: cfg.Filter.Compile(pol.Rules()), next: reported}}
	}
	var stats pipeline.SourceStats
	var table *classifier.Table
	var textfile *textfileMetrics
	if cfg.MetricsOut != "" {
		// A path that cannot be written is found before a long replay,
		// not after it.
		if err := checkWritableDir(cfg.MetricsOut); err != nil {
			return nil, fmt.Errorf("--metrics-out %s: %w", cfg.MetricsOut, err)
		}
		var err error
		textfile, err = newTextfileMetrics(cfg, &stats, func() classifier.Stats { return table.Stats() }, inv)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, textfile.flows)
	}
	opts := classifier.OptionsFor(pol.Timeouts())
	if cfg.MaxFlows > 0 {
		opts.MaxFlows = cfg.MaxFlows
	}
	if !cfg.HeadersOnly {
		opts.Inspect = classifier.NewInspectPorts(pol.Rules())
	}
	opts.RPCStrict = cfg.RPCStrict
	deferred := pipeline.NewDeferredSink(sinks)
	table = classifier.NewTable(opts, policy.Bind(pol, inv), deferred.TableSink())

	stopProgress := startProgress(cfg.Progress, &stats)
	popts := pipeline.Options{Sequential: cfg.Sequential, Deferred: deferred}
	if len(cfg.Files) == 1 {
		// One file is read as it is: the merge would only cost its
		// bookkeeping on every packet.
		res.Files = cfg.Files
		if err := replayFile(ctx, cfg.Files[0], table, &stats, popts); err != nil {
			res.ReadErrors = append(res.ReadErrors, err)
		}
	} else {
		m := newMerged(cfg.Files)
		res.Files = m.files()
		cfg.Log.Debug().Strs("files", res.Files).Msg("merging the files by packet time")
		err := pipeline.Run(ctx, m, table, &stats, popts)
		m.Close()
		if err != nil {
			res.ReadErrors = append(res.ReadErrors, err)
		}
		res.ReadErrors = append(res.ReadErrors, m.errs()...)
	}
	if ctx.Err() != nil {
		at := time.Unix(0, stats.LastTS.Load()).UTC().Format(time.RFC3339Nano)
		res.ReadErrors = append(res.ReadErrors, fmt.Errorf("interrupted: the packets after %s were not read", at))
	}
	stopProgress()
	if cfg.AfterRead != nil {
		cfg.AfterRead()
	}
	table.Flush(stats.LastTS.Load())
	res.Counts, res.Table = stats.Counts(), table.Stats()
	if jsonOut != nil {
		if err := jsonOut.Flush(); err != nil {
			return res, fmt.Errorf("write output: %w", err)
		}
	}
	if textfile != nil {
		if err := metrics.WriteTextfile(cfg.MetricsOut, textfile.registry); err != nil {
			return res, err
		}
	}
	logSummary(cfg.Log, res)
	return res, nil
}

// Stdin is the file name that reads a capture from standard input.
const Stdin = "-"

// openCapture opens a capture file, or standard input for "-".
func openCapture(name string) (capture.Reader, error) {
	if name == Stdin {
		return capture.NewReader(os.Stdin, "standard input")
	}
	return capture.OpenFile(name)
}

// replayFile runs the pipeline on one file, read as it is.
func replayFile(ctx context.Context, name string, table *classifier.Table, stats *pipeline.SourceStats, opts pipeline.Options) error {
	src, err := openCapture(name)
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
		return unsupportedError(name, n, stats.Records.Load()-before, capture.LinkType(stats.UnsupportedLink.Load()))
	}
	return nil
}

// unsupportedError says that n of the records of file have a link type
// tpwatch does not decode.
func unsupportedError(file string, n, records uint64, link capture.LinkType) error {
	return fmt.Errorf("%s: %d of %d packets have link type %s, which tpwatch does not decode (it reads Ethernet, 802.1Q/QinQ, Linux SLL and SLL2, raw IPv4/IPv6 and BSD loopback)",
		file, n, records, link)
}

func logSummary(log zerolog.Logger, res *Result) {
	c, ts := &res.Counts, &res.Table
	log.Debug().
		Uint64("packets", c.Records).
		Uint64("not_ip", c.NotIP).
		Uint64("decapsulated", c.Decapsulated).
		Uint64("decode_errors", c.DecodeErrors()).
		Uint64("flows", ts.FlowsCreated).
		Uint64("evicted", ts.FlowsEvicted).
		Uint64("fragments", ts.Fragments).
		Uint64("table_capacity", ts.Capacity).
		Uint64("expired", ts.FlowsExpired).
		Uint64("peak_rss_bytes", peakRSS()).
		Msg("replay done")
	if n := c.DecodeErrors(); n > 0 {
		log.Warn().Uint64("truncated", c.Truncated).Uint64("malformed", c.Malformed).
			Uint64("unsupported_link", c.Unsupported).Msg("some packets could not be decoded and were skipped")
	}
	if ts.FlowsEvicted > 0 {
		log.Warn().Uint64("evicted", ts.FlowsEvicted).Msg("the flow table was full; raise --max-flows")
	}
}

// startProgress calls report about once a second until stop is called,
// then once with done set.
func startProgress(report func(Progress, bool), stats *pipeline.SourceStats) (stop func()) {
	if report == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	now := func() Progress {
		return Progress{Packets: stats.Records.Load(), Bytes: stats.Bytes.Load(), Elapsed: time.Since(start)}
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				report(now(), true)
				return
			case <-tick.C:
				report(now(), false)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// filtered is a sink that passes on the flows a filter keeps.
type filtered struct {
	f    *report.FlowFilter
	next classifier.Sink
}

func (s *filtered) Decided(r *classifier.FlowRecord) {
	if s.f.Keeps(r) {
		s.next.Decided(r)
	}
}

func (s *filtered) Final(r *classifier.FlowRecord) {
	if s.f.Keeps(r) {
		s.next.Final(r)
	}
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
