package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture/live"
	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/metrics"
	"github.com/tpwatch/tpwatch/policy"
)

// Daemon is a running live monitor. Build it with New, start it with Run.
type Daemon struct {
	cfg Config
	log zerolog.Logger

	policy    livePolicy
	vantage   *classifier.VantagePoint
	ownAddrs  atomic.Pointer[[]netip.Addr] // the host's addresses, for its roles
	reloadMu  sync.Mutex                   // one reload at a time
	timeouts  policy.Timeouts
	sources   []*source
	counters  *metrics.FlowCounters
	reloads   metrics.ReloadStatus
	flowLog   *flowLog
	status    *status
	registry  *prometheus.Registry
	listeners []net.Listener
}

// Run loads the policy, opens the metrics listeners and the captures,
// drops privileges if asked, and monitors until ctx is done; then it stops
// capturing, flushes every flow table and returns nil. A reload is done
// on each receive from cfg.Reload. Errors before monitoring starts (a bad
// config, a listen address in use, an unknown --user, a capture that
// cannot work: see live.Permanent) are returned; an interface that is
// missing or fails later is retried and never ends Run.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	d, err := New(cfg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// New loads the policy and builds the flow tables and metrics, without
// opening anything.
func New(cfg Config, log zerolog.Logger) (*Daemon, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Interfaces) == 0 {
		return nil, errors.New("no interface to capture on")
	}
	if cfg.WebConfigFile != "" {
		// Checked before any capture opens: a typo in the TLS or auth
		// file must not leave a half-started daemon.
		if err := web.Validate(cfg.WebConfigFile); err != nil {
			return nil, fmt.Errorf("--web.config.file %s: %w", cfg.WebConfigFile, err)
		}
	}
	d := &Daemon{cfg: cfg, log: log}
	pol, err := policy.Load(cfg.MatrixFile, cfg.ConfigFile)
	if err != nil {
		return nil, err
	}
	if pol.Inferred() {
		d.policy.inventory = policy.NewInventory(0)
	}
	for _, w := range pol.Warnings() {
		log.Warn().Str("config", cfg.ConfigFile).Msg(w)
	}
	snap := d.policy.store(pol)
	d.timeouts = pol.Timeouts()
	d.reloads.Success(time.Now())
	d.counters = metrics.NewFlowCounters(nil)
	d.counters.SetRules(metrics.RulesOf(snap.rules))
	d.status = newStatus(snap.rules, cfg.RecentFlows)
	d.flowLog = &flowLog{
		log:        log,
		bucket:     newTokenBucket(cfg.LogRate, cfg.LogBurst, time.Now),
		suppressed: new(metrics.SuppressedLogEvents),
	}

	opts := classifier.OptionsFor(pol.Timeouts())
	if cfg.MaxFlows > 0 {
		opts.MaxFlows = cfg.MaxFlows
	}
	if !cfg.HeadersOnly {
		// One table of announced ports for every interface: an endpoint
		// mapper's answer may cross one, the flow it announces another.
		opts.Inspect = classifier.NewInspectPorts(pol.Rules())
		opts.Announcements = classifier.NewAnnouncements(0, 0)
	}
	opts.RPCStrict = cfg.RPCStrict
	if err := d.setUpVantage(); err != nil {
		return nil, err
	}
	opts.Vantage = d.vantage
	filter := cfg.Live.BPF
	if filter == "" {
		filter = BPFFilter(pol)
		// The derived filter is written for untagged frames; a filter the
		// user gave with --bpf is applied exactly as given.
		d.cfg.Live.BPFInVLANs = true
	}
	seen := map[string]bool{}
	for _, name := range cfg.Interfaces {
		if seen[name] {
			return nil, fmt.Errorf("interface %s given twice", name)
		}
		seen[name] = true
		sink := &flowSink{iface: name, counters: d.counters, log: d.flowLog, policy: &d.policy, status: d.status}
		d.sources = append(d.sources, &source{
			name:       name,
			backend:    cfg.Backend,
			opts:       d.cfg.Live,
			filter:     filter,
			table:      classifier.NewTable(opts, &d.policy, sink),
			sink:       sink,
			log:        log,
			retryMin:   cfg.RetryMin,
			retryMax:   cfg.RetryMax,
			statsEvery: cfg.StatsInterval,
		})
	}
	e := metrics.Exporter{
		Version: cfg.Version, Revision: cfg.Revision,
		Host:                d.hostInfo,
		Flows:               d.counters,
		Captures:            d.captureStats,
		Table:               d.tableStats,
		Reloads:             &d.reloads,
		SuppressedLogEvents: d.flowLog.suppressed,
		Runtime:             true,
	}
	if inv := d.policy.inventory; inv != nil {
		e.Inventory = inv.Stats
	}
	if d.registry, err = metrics.NewRegistry(e); err != nil {
		return nil, err
	}
	return d, nil
}

// Registry returns the registry the daemon serves, for tests.
func (d *Daemon) Registry() *prometheus.Registry { return d.registry }

func (d *Daemon) captureStats() map[string]metrics.CaptureStats {
	out := make(map[string]metrics.CaptureStats, len(d.sources))
	for _, s := range d.sources {
		out[s.name] = s.snapshot()
	}
	return out
}

func (d *Daemon) tableStats() classifier.Stats {
	var sum classifier.Stats
	for _, s := range d.sources {
		sum.Add(s.table.Stats())
	}
	return sum
}

// Run monitors until ctx is done. See the package function Run.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.listen(); err != nil {
		return err
	}
	d.policy.own.Store(ownEndpoints(d.listeners))
	// Opening compiles the capture filter, in libpcap, which cannot be
	// interrupted: a long --bpf may take seconds. A stop asked meanwhile
	// is honoured at once, and the captures are closed once the open
	// returns.
	opened := make(chan error, 1)
	go func() { opened <- d.open() }()
	select {
	case err := <-opened:
		if err != nil {
			d.closeAll()
			return err
		}
	case <-ctx.Done():
		for _, l := range d.listeners {
			l.Close()
		}
		go func() {
			<-opened
			d.closeSources()
		}()
		d.log.Info().Msg("stopped while opening the captures")
		return nil
	}
	if d.cfg.User != "" {
		if err := dropPrivileges(d.cfg.User); err != nil {
			d.closeAll()
			return fmt.Errorf("--user %s: %w", d.cfg.User, err)
		}
		d.log.Info().Str("user", d.cfg.User).Msg("dropped privileges")
	}

	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	served := make(chan error, 1)
	go func() {
		served <- metrics.ServeListeners(serveCtx, d.listeners, d.cfg.TelemetryPath, d.cfg.WebConfigFile,
			metrics.NewHandler(d.registry), d.log, d.routes()...)
	}()
	d.log.Info().Strs("interfaces", d.cfg.Interfaces).Strs("listen", d.listenAddrs()).
		Str("path", d.cfg.TelemetryPath).Bool("inferred_inventory", d.policy.load().Inferred()).
		Str("vantage", d.cfg.Vantage).Str("host_roles", metrics.RoleSetLabel(d.hostRoles())).Msg("tpwatch running")
	if d.cfg.Ready != nil {
		d.cfg.Ready()
	}

	captureCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	var wg sync.WaitGroup
	for _, s := range d.sources {
		wg.Go(func() { s.run(captureCtx) })
	}
	wg.Go(func() { d.housekeeping(captureCtx) })

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		stopCapture()
		// The endpoint died on its own (a web config that fails per
		// connection does not; this is a listener error): without it the
		// daemon is blind, so it stops rather than capture for nobody.
		d.log.Error().Err(serveErr).Msg("metrics endpoint stopped")
	}
	d.log.Info().Msg("stopping: flushing the flow tables")
	wg.Wait()
	// The flush decides flows after housekeeping's last summary: the
	// events it suppressed are summarised here.
	d.flowLog.summarise()
	d.log.Info().Msg("stopped")
	stopServing()
	if serveErr != nil {
		return serveErr
	}
	if err := <-served; err != nil {
		return err
	}
	return nil
}

// open checks the capture filter and opens every interface once, before
// privileges are dropped. What cannot work (no live capture in this
// build, no right to capture, a filter libpcap refuses) is an error now,
// as tcpdump refuses a bad filter at once; an interface that is missing
// or down is retried later.
func (d *Daemon) open() error {
	filter := d.sources[0].liveOptions()
	if err := d.cfg.Backend.CheckFilter(filter.BPF, filter); err != nil {
		if errors.Is(err, live.ErrUnavailable) {
			// No capture library (no Npcap): that, not the filter, is
			// what the user must fix.
			return err
		}
		if d.cfg.Live.BPF != "" {
			return fmt.Errorf("--bpf: %w", err)
		}
		return fmt.Errorf("the capture filter derived from the config: %w", err)
	}
	for _, s := range d.sources {
		err := s.tryOpen()
		switch {
		case err == nil:
		case live.Permanent(err):
			return err
		default:
			d.log.Warn().Err(err).Str("interface", s.name).Msg("cannot open interface; will retry")
		}
	}
	return nil
}

// listen opens every metrics listener before anything else, so a port in
// use is an error at start, not a log line later.
func (d *Daemon) listen() error {
	if len(d.cfg.Listeners) > 0 {
		d.listeners = d.cfg.Listeners
		return nil
	}
	for _, addr := range d.cfg.ListenAddresses {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			d.closeAll()
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		d.listeners = append(d.listeners, l)
	}
	return nil
}

func (d *Daemon) listenAddrs() []string {
	out := make([]string, len(d.listeners))
	for i, l := range d.listeners {
		out[i] = l.Addr().String()
	}
	return out
}

func (d *Daemon) closeAll() {
	for _, l := range d.listeners {
		l.Close()
	}
	d.closeSources()
}

// closeSources closes the captures opened before monitoring started.
func (d *Daemon) closeSources() {
	for _, s := range d.sources {
		if s.opened != nil {
			s.opened.Close()
			s.opened = nil
		}
	}
}

// housekeeping runs reloads (one goroutine for every reload request, as
// node_exporter does) and the periodic suppressed-events summary.
func (d *Daemon) housekeeping(ctx context.Context) {
	tick := time.NewTicker(d.cfg.SuppressedReport)
	defer tick.Stop()
	addrs := time.NewTicker(d.cfg.AddrsInterval)
	defer addrs.Stop()
	reload := d.cfg.Reload
	for {
		select {
		case <-ctx.Done():
			d.flowLog.summarise()
			return
		case <-tick.C:
			d.flowLog.summarise()
		case <-addrs.C:
			d.refreshAddrs()
		case _, ok := <-reload:
			if !ok {
				reload = nil
				continue
			}
			_ = d.Reload()
		}
	}
}

// Reload reads the matrix and the site config again and, when both parse
// and compile and every interface accepts the capture filter they give,
// puts them in force in full for every interface at once: rules,
// inventory, features, filter and timeouts (each flow table applies new
// timeouts before its next batch of packets). Flow state is kept. On
// failure nothing changes, the error is logged and returned, and
// tpwatch_config_last_reload_successful is 0.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	fail := func(err error, what string) error {
		d.reloads.Failure()
		d.log.Error().Err(err).Str("config", d.cfg.ConfigFile).Msg("config reload failed: " + what + "; the previous config stays in force")
		return err
	}
	pol, err := policy.Load(d.cfg.MatrixFile, d.cfg.ConfigFile)
	if err != nil {
		return fail(err, "cannot load it")
	}
	if d.cfg.ConfigFile == "" && d.cfg.MatrixFile == "" {
		// Nothing was read from disk.
		d.reloads.Success(time.Now())
		d.log.Info().Msg("reload: no --config or --matrix to read again")
		return nil
	}
	filter := ""
	if d.cfg.Live.BPF == "" {
		filter = BPFFilter(pol)
		if err := d.cfg.Backend.CheckFilter(filter, d.cfg.Live); err != nil {
			return fail(err, "capture filter")
		}
		// Every interface must accept the filter before any changes, or a
		// failed reload would leave them on different configs.
		for _, s := range d.sources {
			if err := s.checkFilter(filter); err != nil {
				return fail(err, "capture filter")
			}
		}
	}
	for _, s := range d.sources {
		if filter != "" {
			if err := s.setFilter(filter); err != nil {
				// Checked above: only a capture reopened meanwhile on
				// another link type gets here; it keeps its filter.
				d.log.Error().Err(err).Str("interface", s.name).Msg("capture filter not changed on this interface")
			}
		}
		s.setTimeouts(pol.Timeouts())
	}
	for _, w := range pol.Warnings() {
		d.log.Warn().Str("config", d.cfg.ConfigFile).Msg(w)
	}
	// Stable rule numbers only grow, so a flow counted with the old
	// numbering between these two lines still lands on its rule.
	snap := d.policy.store(pol)
	d.counters.SetRules(metrics.RulesOf(snap.rules))
	d.status.setRules(snap.rules)
	d.reloads.Success(time.Now())
	ev := d.log.Info().Str("config", d.cfg.ConfigFile).Int("rules", len(pol.Rules()))
	if pol.Timeouts() != d.timeouts {
		ev = ev.Bool("timeouts_changed", true)
		d.timeouts = pol.Timeouts()
	}
	ev.Msg("config reloaded")
	return nil
}

// ownEndpoints are the endpoints the listeners serve on: their ports, on
// the address each is bound to, or on every address of this host's
// interfaces for one bound to all (":19740"). A sensor on a mirror port
// still reports a scrape of another host's tpwatch.
func ownEndpoints(listeners []net.Listener) *endpoints {
	e := &endpoints{ports: map[uint16]bool{}, addrs: map[[16]byte]bool{}}
	all := false
	for _, l := range listeners {
		ap, err := netip.ParseAddrPort(l.Addr().String())
		if err != nil {
			continue
		}
		e.ports[ap.Port()] = true
		if a := ap.Addr().Unmap(); a.IsUnspecified() {
			all = true
		} else {
			e.addrs[netip.AddrFrom16(a.As16()).As16()] = true
		}
	}
	if all {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			e.addrs = nil // cannot tell: the port on any address
			return e
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				e.addrs[p.Addr().Unmap().As16()] = true
			}
		}
	}
	return e
}

// setUpVantage makes the vantage point of every table: fixed for a
// "client", "server" or "transit" daemon, else told by the host's
// addresses, read now and refreshed by housekeeping.
func (d *Daemon) setUpVantage() error {
	mode := d.cfg.Vantage
	if mode == "auto" {
		d.vantage = classifier.NewVantagePoint(classifier.VantageTransit, false)
		d.counters.SetZeroVantages(classifier.VantageClient, classifier.VantageServer)
		d.counters.SetHostRoles(d.hostRoles)
		d.refreshAddrs()
		return nil
	}
	v, ok := classifier.ParseVantage(mode)
	if !ok {
		return fmt.Errorf("--vantage %q: want auto, client, server or transit", mode)
	}
	d.vantage = classifier.NewVantagePoint(v, true)
	d.counters.SetZeroVantages(v)
	if addrs, err := d.cfg.LocalAddrs(); err == nil {
		d.ownAddrs.Store(&addrs)
	}
	return nil
}

// refreshAddrs reads the host's addresses again, and logs a change: the
// vantage of a flow follows them.
func (d *Daemon) refreshAddrs() {
	addrs, err := d.cfg.LocalAddrs()
	if err != nil {
		d.log.Warn().Err(err).Msg("cannot read the host's addresses; the vantage of flows keeps the last ones")
		return
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	old := d.ownAddrs.Load()
	if old != nil && slices.Equal(*old, addrs) {
		return
	}
	words := make([][16]byte, len(addrs))
	names := make([]string, len(addrs))
	for i, a := range addrs {
		words[i], names[i] = a.As16(), a.String() // IPv4 as16 is IPv4-mapped, as the tables keep it
	}
	if _, fixed := d.vantage.Fixed(); !fixed {
		d.vantage.SetAddrs(words)
	}
	d.ownAddrs.Store(&addrs)
	ev := d.log.Info()
	if old == nil {
		ev = d.log.Debug() // the first reading, at start
	}
	ev.Strs("addresses", names).Msg("this host's addresses, for the vantage of its flows")
}

// hostInfo says, for tpwatch_host_info, the roles this host's addresses
// hold in the inventory in force, and the vantage mode.
func (d *Daemon) hostInfo() metrics.HostInfo {
	return metrics.HostInfo{Roles: metrics.RoleSetLabel(d.hostRoles()), Vantage: d.cfg.Vantage}
}

// hostRoles are the roles this host's addresses hold in the inventory in
// force.
func (d *Daemon) hostRoles() policy.RoleSet {
	var roles policy.RoleSet
	if addrs := d.ownAddrs.Load(); addrs != nil {
		for _, a := range *addrs {
			roles |= d.policy.Roles(a.As16())
		}
	}
	return roles
}
