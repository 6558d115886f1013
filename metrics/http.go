package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/rs/zerolog"
)

// shutdownGrace bounds how long Serve waits for scrapes in progress once
// its context is done.
const shutdownGrace = 5 * time.Second

// serverLimits bound what a client of the metrics endpoint may hold: the
// endpoint may face an untrusted network (a sensor's management address),
// and an HTTP server without them keeps a goroutine and its buffers for
// every connection opened and never used, and every keep-alive connection
// left idle, for ever.
type serverLimits struct {
	// readHeader and read bound the reading of a request's headers and of
	// the whole request (a scrape has no body); write bounds the writing
	// of the response, which for a big registry over a slow link takes
	// the longest; idle closes a keep-alive connection that long after
	// its last response.
	readHeader, read, write, idle time.Duration
	// maxHeaderBytes bounds a request's headers (a scrape sends a few
	// hundred bytes).
	maxHeaderBytes int
	// maxConns bounds the open connections over every listener; see
	// connLimiter.
	maxConns int
}

// defaultLimits: a scrape of a registry of several thousand series takes
// well under a second, so a minute to write it leaves room for a slow
// link, and Prometheus scraping every 15 or 30 s keeps its connection
// open between scrapes; a few Prometheus servers and a person with curl
// need nowhere near 64 connections at once.
var defaultLimits = serverLimits{
	readHeader:     10 * time.Second,
	read:           30 * time.Second,
	write:          60 * time.Second,
	idle:           45 * time.Second,
	maxHeaderBytes: 16 << 10,
	maxConns:       64,
}

// NewHandler serves the metrics of reg in the Prometheus text and protobuf
// formats. It also counts its own requests (promhttp_metric_handler_*) on
// reg. A collector that fails does not fail the scrape: the other metrics
// are still served and the error is counted.
func NewHandler(reg *prometheus.Registry) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: false,
	})
	return promhttp.InstrumentMetricHandler(reg, h)
}

// Route is one more page served beside the metrics, behind the same TLS
// and authentication: the daemon's status page and flow API. Pattern is a
// net/http.ServeMux pattern ("GET /api/v1/flows"); a route for the root
// ("/{$}", with or without a method) replaces the landing page.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Serve listens on every address and serves h at path, the routes, and
// unless a route replaces it a landing page linking the metrics at "/",
// until ctx is done; then it shuts down gracefully and
// returns nil. webConfigFile, when not empty, is an exporter-toolkit web
// config (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md):
// TLS and basic auth, re-read on each connection so certificates can rotate.
func Serve(ctx context.Context, addrs []string, path, webConfigFile string, h http.Handler, logger zerolog.Logger, routes ...Route) error {
	if len(addrs) == 0 {
		return errors.New("serve metrics: no listen address")
	}
	if err := validateWebConfig(webConfigFile); err != nil {
		return err
	}
	listeners := make([]net.Listener, 0, len(addrs))
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	var lc net.ListenConfig
	for _, addr := range addrs {
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("serve metrics: listen on %s: %w", addr, err)
		}
		listeners = append(listeners, l)
	}
	return ServeListeners(ctx, listeners, path, webConfigFile, h, logger, routes...)
}

// ServeListeners is Serve on listeners the caller opened (systemd socket
// activation, or a test that needs to know the port). It closes them.
func ServeListeners(ctx context.Context, listeners []net.Listener, path, webConfigFile string, h http.Handler, logger zerolog.Logger, routes ...Route) error {
	return serveListeners(ctx, listeners, path, webConfigFile, h, logger, defaultLimits, routes...)
}

func serveListeners(ctx context.Context, listeners []net.Listener, path, webConfigFile string, h http.Handler, logger zerolog.Logger, limits serverLimits, routes ...Route) error {
	if err := validateWebConfig(webConfigFile); err != nil {
		return err
	}
	mux, err := newMux(path, h, routes)
	if err != nil {
		return err
	}
	slogger := slog.New(zerolog.NewSlogHandler(logger))
	lim := newConnLimiter(limits.maxConns)
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: limits.readHeader,
		ReadTimeout:       limits.read,
		WriteTimeout:      limits.write,
		IdleTimeout:       limits.idle,
		MaxHeaderBytes:    limits.maxHeaderBytes,
		ConnState:         lim.connState,
		// TLS handshake failures of scanners and misconfigured clients land
		// here; keep them in tpwatch's log, not on stderr.
		ErrorLog: slog.NewLogLogger(slogger.Handler(), slog.LevelWarn),
	}
	limited := make([]net.Listener, len(listeners))
	for i, l := range listeners {
		limited[i] = lim.listener(l)
	}
	listeners = limited
	flags := &web.FlagConfig{
		WebListenAddresses: new([]string),
		WebSystemdSocket:   new(bool),
		WebConfigFile:      &webConfigFile,
	}

	done := make(chan error, 1)
	go func() {
		done <- web.ServeMultiple(listeners, server, flags, slogger)
	}()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("serve metrics: shut down: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// validateWebConfig fails early, before anything listens, on a web config
// that exporter-toolkit would otherwise only reject per listener.
func validateWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("web config %s: %w", path, err)
	}
	return nil
}

func newMux(path string, h http.Handler, routes []Route) (mux *http.ServeMux, err error) {
	if path == "" || path[0] != '/' {
		return nil, fmt.Errorf("serve metrics: metrics path %q must start with /", path)
	}
	mux = http.NewServeMux()
	// A route that clashes with the metrics path (or another route)
	// makes Handle panic: an error at start instead.
	defer func() {
		if r := recover(); r != nil {
			mux, err = nil, fmt.Errorf("serve metrics: %v", r)
		}
	}()
	mux.Handle(path, h)
	root := path == "/"
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
		_, p, _ := strings.Cut(r.Pattern, " ")
		if p == "" {
			p = r.Pattern
		}
		root = root || p == "/" || p == "/{$}"
	}
	if root {
		return mux, nil
	}
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "tpwatch",
		Description: "Passive compliance monitor for the network flows of Netwrix Threat Prevention",
		Links:       []web.LandingLinks{{Address: path, Text: "Metrics"}},
		Profiling:   "false",
	})
	if err != nil {
		return nil, fmt.Errorf("serve metrics: landing page: %w", err)
	}
	mux.Handle("/", landing)
	return mux, nil
}
