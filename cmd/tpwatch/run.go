package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/tpwatch/tpwatch/capture/live"
	"github.com/tpwatch/tpwatch/daemon"
	"github.com/tpwatch/tpwatch/internal/logfile"
	"github.com/tpwatch/tpwatch/winsvc"
)

type runFlags struct {
	policy        policyFlags
	interfaces    []string
	promiscuous   bool
	bpf           string
	snaplen       int
	headersOnly   bool
	rpcStrict     bool
	bufferSize    int
	listen        []string
	telemetryPath string
	webConfig     string
	maxFlows      int
	vantage       string
	user          string
	logRate       float64
	logBurst      int
	retryMax      time.Duration
	logFile       string
}

func (a *app) runCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --interface NAME [flags]",
		Short: "Monitor live traffic and serve the verdicts as Prometheus metrics",
		Long: `Capture live traffic on one or more interfaces (libpcap; Npcap on Windows),
classify every flow against the Threat Prevention port matrix as replay does,
and serve the results as Prometheus metrics (tpwatch_flows_total{verdict,
reason,rule} and capture health) on --web.listen-address, beside a status
page at / (the report of what was seen since the start, the last problem
flows, capture health, the config in force) and the flow API at
/api/v1/flows that tpwatch observe reads; all behind --web.config.file.

Every blocked or unexpected flow is logged once, when it is decided, as a
structured event (the fields of replay --format json), at most --log.rate
events a second; the rest are counted in tpwatch_log_events_suppressed_total.
Allowed flows are counted, not logged.

Without --bpf, the kernel filter is derived from the config: the inventory's
hosts (past 32 hosts and networks, only the product hosts, the rest selected
by the rules' ports), the matrix's server ports and ICMP errors (all TCP, UDP,
ICMP and IPv6 when the inventory is inferred). An interface that is missing or fails is retried
with backoff and shown as tpwatch_capture_up 0.

Signals: SIGHUP reloads --config and --matrix (a bad file keeps the old
config and sets tpwatch_config_last_reload_successful to 0); SIGTERM or
SIGINT stops capturing, decides what can be decided, and exits 0.

Capturing needs root, or CAP_NET_RAW (and CAP_NET_ADMIN for --promiscuous);
--user switches to an unprivileged account once the captures are open.

On Windows, capture needs Npcap (https://npcap.com), and an elevated prompt
when Npcap restricts capture to administrators; --interface takes the name
Windows shows (Ethernet0; see tpwatch interfaces). Run under the service
control manager (tpwatch service install), it is a Windows service:
ParamChange (sc control tpwatch paramchange) reloads the config as SIGHUP
does, Stop and Shutdown stop it as SIGTERM does.`,
		Example: `  sudo tpwatch run --interface eth0 --config /etc/tpwatch/site.yaml
  sudo tpwatch run --interface eth0 --interface eth1 --promiscuous --user tpwatch
  sudo tpwatch run --interface any --web.listen-address 127.0.0.1:19740
  sudo tpwatch run --interface eth0 --bpf 'host 192.0.2.10' --web.config.file web.yml
  sudo kill -HUP $(pidof tpwatch)     # reload the config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDaemon(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	f.policy.register(cmd, "site config (roles, features, SIEM ports, allow rules, timeouts); without it roles are inferred from the traffic; reread on SIGHUP")
	fl.StringArrayVarP(&f.interfaces, "interface", "i", nil, "interface to capture on (repeatable; each gets its own flow table; \"any\" on Linux captures all)")
	fl.BoolVar(&f.promiscuous, "promiscuous", false, "put the interfaces in promiscuous mode (a sensor on a SPAN or mirror port)")
	fl.StringVar(&f.bpf, "bpf", "", "capture filter (pcap-filter syntax) instead of the one derived from the config")
	fl.IntVar(&f.snaplen, "snaplen", live.DefaultSnaplen, "bytes captured of each packet: the headers, and the first payload bytes that name a protocol and carry an endpoint mapper's answer (1024 reads DCOM activations and SQL Browser answers of many instances whole)")
	fl.BoolVar(&f.headersOnly, "headers-only", false, "read no payload byte: learn no port from the endpoint mapper or SQL Browser, name no application protocol")
	fl.BoolVar(&f.rpcStrict, "rpc-strict", false, "report flows a dynamic RPC rule admits by its range alone, with no endpoint mapper answer seen, as unexpected/rpc_unannounced")
	fl.IntVar(&f.bufferSize, "buffer-size", 0, "kernel capture buffer in bytes (0: libpcap's default); raise it if tpwatch_capture_kernel_drops_total grows")
	fl.StringArrayVar(&f.listen, "web.listen-address", []string{daemon.DefaultListenAddress}, "address to serve metrics on (repeatable)")
	fl.StringVar(&f.telemetryPath, "web.telemetry-path", daemon.DefaultTelemetryPath, "path of the metrics")
	fl.StringVar(&f.webConfig, "web.config.file", "", "exporter-toolkit web config for TLS and basic auth")
	fl.StringVar(&f.vantage, "vantage", "auto", "where flows are seen from, a label of the flow metrics and a field of the events: auto (client or server by this host's addresses) on an Agent or Enterprise Manager host, transit for a sensor on a mirror port (client and server force those)")
	fl.IntVar(&f.maxFlows, "max-flows", 0, "most flows followed at once per interface (0: the default, 1048576); past it decided flows and unanswered attempts are dropped first, established sessions last")
	fl.StringVar(&f.user, "user", "", "switch to this user once the captures are open (Linux; under systemd use capabilities instead)")
	fl.Float64Var(&f.logRate, "log.rate", daemon.DefaultLogRate, "most blocked or unexpected flows logged per second (negative: no limit)")
	fl.IntVar(&f.logBurst, "log.burst", daemon.DefaultLogBurst, "most flow events logged at once before --log.rate applies")
	fl.DurationVar(&f.retryMax, "interface.retry-max", 30*time.Second, "longest wait between attempts to open an interface that is missing or failed (the wait doubles from 1s)")
	fl.StringVar(&f.logFile, "log.file", "", "write the log (JSON) to this file instead of stderr, rotated at 10 MiB with one old file kept (the Windows service's default: %ProgramData%\\tpwatch\\tpwatch.log)")
	return cmd
}

func (a *app) runDaemon(ctx context.Context, f *runFlags) error {
	usage := func(format string, args ...any) error {
		return &exitStatus{code: exitError, err: fmt.Errorf(format, args...)}
	}
	switch {
	case len(f.interfaces) == 0:
		return usage("run needs --interface (for example --interface eth0)")
	case f.rpcStrict && f.headersOnly:
		return usage("--rpc-strict needs the endpoint mapper's answers, which --headers-only does not read")
	case f.snaplen < 68 || f.snaplen > 262144:
		return usage("--snaplen %d: want 68 to 262144", f.snaplen)
	case f.maxFlows < 0:
		return usage("--max-flows %d: want a positive number", f.maxFlows)
	case f.logRate == 0:
		return usage("--log.rate 0: want a positive rate, or a negative one for no limit")
	case f.bufferSize < 0:
		return usage("--buffer-size %d: want 0 or more bytes", f.bufferSize)
	case len(f.listen) == 0:
		return usage("--web.listen-address: want at least one address")
	case f.retryMax < time.Second:
		return usage("--interface.retry-max %v: want 1s or more", f.retryMax)
	}
	if runtime.GOOS == "windows" {
		for _, name := range f.interfaces {
			if strings.EqualFold(name, "any") {
				known := "see tpwatch interfaces"
				if list, err := live.Interfaces(); err == nil {
					known = "the interfaces are " + live.KnownNames(list)
				}
				return usage("--interface any: Npcap has no \"any\" device; give each interface with its own --interface (%s)", known)
			}
		}
		if f.user != "" {
			return usage("--user is for Linux; on Windows run tpwatch as a service (tpwatch service install), whose account replaces it")
		}
	}
	cfg := f.daemonConfig()
	if isService, err := winsvc.IsService(); err == nil && isService {
		return a.runService(cfg, f)
	}
	if f.logFile != "" {
		closeLog, err := a.logToFile(f.logFile)
		if err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		defer closeLog()
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // a reload is already queued
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	cfg.Reload = reload
	d, err := daemon.New(cfg, a.log)
	if err != nil {
		return a.printErrors(err)
	}
	if err := d.Run(ctx); err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	return nil
}

// daemonConfig is what the flags ask the daemon to do.
func (f *runFlags) daemonConfig() daemon.Config {
	return daemon.Config{
		Interfaces: f.interfaces,
		Live: live.Options{
			Snaplen:     f.snaplen,
			Promiscuous: f.promiscuous,
			BPF:         f.bpf,
			BufferSize:  f.bufferSize,
		},
		ConfigFile:      f.policy.config,
		MatrixFile:      f.policy.matrix,
		ListenAddresses: f.listen,
		TelemetryPath:   f.telemetryPath,
		WebConfigFile:   f.webConfig,
		MaxFlows:        f.maxFlows,
		HeadersOnly:     f.headersOnly,
		RPCStrict:       f.rpcStrict,
		Vantage:         f.vantage,
		LogRate:         f.logRate,
		RetryMax:        f.retryMax,
		LogBurst:        f.logBurst,
		User:            f.user,
		Version:         version,
		Revision:        revision,
	}
}

// logToFile sends the log, as JSON at the level asked for, to a file that
// rotates itself, and returns what closes it.
func (a *app) logToFile(path string) (func(), error) {
	lf, err := logfile.Open(path, 0)
	if err != nil {
		return nil, fmt.Errorf("--log.file: %w", err)
	}
	a.log = zerolog.New(lf).Level(a.log.GetLevel()).With().Timestamp().Logger()
	return func() { lf.Close() }, nil
}

// runService runs the daemon as the Windows service: the log goes to
// --log.file (by default under %ProgramData%\tpwatch), its lifecycle
// events also to the Event Log, and the service control manager's
// requests replace the signals.
func (a *app) runService(cfg daemon.Config, f *runFlags) error {
	path := f.logFile
	if path == "" {
		path = winsvc.DefaultLogFile()
	}
	lf, err := logfile.Open(path, 0)
	if err != nil {
		// No log file (a full disk, a read-only directory): the Event Log
		// still says what happens.
		lf = nil
	}
	var w []io.Writer
	if lf != nil {
		defer lf.Close()
		w = append(w, lf)
	}
	events, closeEvents, evErr := winsvc.OpenEventLog()
	if evErr == nil {
		defer closeEvents.Close()
		w = append(w, winsvc.EventWriter{Sink: events})
	}
	a.log = zerolog.New(zerolog.MultiLevelWriter(w...)).Level(a.log.GetLevel()).With().Timestamp().Logger()
	if err != nil {
		a.log.Error().Err(err).Msg("cannot open the log file; logging to the Event Log only")
	}
	if evErr != nil {
		a.log.Warn().Err(evErr).Msg("cannot open the Event Log (reinstall the service to register its source)")
	}
	h := &winsvc.Handler{
		Events: events,
		Run: func(ctx context.Context, reload <-chan struct{}, ready func()) error {
			c := cfg
			c.Reload, c.Ready = reload, ready
			d, err := daemon.New(c, a.log)
			if err != nil {
				return err
			}
			return d.Run(ctx)
		},
	}
	if err := winsvc.RunService(h); err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	return nil
}
