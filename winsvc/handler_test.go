package winsvc

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/capture/live"
	"github.com/tpwatch/tpwatch/daemon"
)

// scm is a fake service control manager: it sends change requests to a
// handler's Execute and reads the statuses it reports.
type scm struct {
	t      *testing.T
	r      chan ChangeRequest
	s      chan Status
	code   chan uint32
	status Status // the last one read
}

func startSCM(t *testing.T, h *Handler) *scm {
	t.Helper()
	m := &scm{t: t, r: make(chan ChangeRequest), s: make(chan Status, 64), code: make(chan uint32, 1)}
	go func() { m.code <- h.Execute(m.r, m.s) }()
	return m
}

// expect reads the next status, which must be in state want.
func (m *scm) expect(want State, within time.Duration) Status {
	m.t.Helper()
	select {
	case st := <-m.s:
		if st.State != want {
			m.t.Fatalf("status %s, want %s (%+v)", StateName(st.State), StateName(want), st)
		}
		m.status = st
		return st
	case <-time.After(within):
		m.t.Fatalf("no status within %v, want %s", within, StateName(want))
	}
	return Status{}
}

func (m *scm) send(c Cmd) {
	m.t.Helper()
	select {
	case m.r <- ChangeRequest{Cmd: c, CurrentStatus: m.status}:
	case <-time.After(5 * time.Second):
		m.t.Fatalf("the handler does not take change request %d", c)
	}
}

// exit waits for Execute to return and gives its exit code.
func (m *scm) exit(within time.Duration) uint32 {
	m.t.Helper()
	select {
	case c := <-m.code:
		return c
	case <-time.After(within):
		m.t.Fatalf("Execute did not return within %v", within)
	}
	return 0
}

// events is a fake Event Log.
type events struct {
	mu  sync.Mutex
	got []string // "id severity first line"
}

func (e *events) Event(id uint32, sev Severity, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	first, _, _ := strings.Cut(msg, "\n")
	e.got = append(e.got, strings.Join([]string{strconv.FormatUint(uint64(id), 10), sev.String(), first}, " "))
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func (e *events) has(prefix string) bool {
	for _, g := range e.list() {
		if strings.HasPrefix(g, prefix) {
			return true
		}
	}
	return false
}

func TestStartRunningInterrogateReloadStop(t *testing.T) {
	reloads := make(chan struct{}, 4)
	returned := make(chan struct{})
	h := &Handler{
		StopHint: 2 * time.Second,
		Run: func(ctx context.Context, reload <-chan struct{}, ready func()) error {
			defer close(returned)
			ready()
			for {
				select {
				case <-reload:
					reloads <- struct{}{}
				case <-ctx.Done():
					return nil
				}
			}
		},
	}
	m := startSCM(t, h)
	if st := m.expect(StartPending, time.Second); st.WaitHint != millis(DefaultStartHint) {
		t.Errorf("start wait hint %d ms, want %d", st.WaitHint, millis(DefaultStartHint))
	}
	st := m.expect(Running, time.Second)
	if want := AcceptStop | AcceptShutdown | AcceptParamChange; st.Accepts != want {
		t.Errorf("running accepts %b, want stop, shutdown and paramchange (%b)", st.Accepts, want)
	}
	m.send(Interrogate)
	m.expect(Running, time.Second)
	m.send(ParamChange)
	select {
	case <-reloads:
	case <-time.After(2 * time.Second):
		t.Fatal("ParamChange did not reach the monitor as a reload")
	}
	m.expect(Running, time.Second)
	m.send(Stop)
	if st := m.expect(StopPending, time.Second); st.WaitHint != 2000 {
		t.Errorf("stop wait hint %d ms, want 2000", st.WaitHint)
	}
	if code := m.exit(2 * time.Second); code != ExitOK {
		t.Errorf("exit code %d after a stop, want 0", code)
	}
	select {
	case <-returned:
	default:
		t.Error("Execute returned before the monitor did")
	}
}

func TestShutdownStopsLikeStop(t *testing.T) {
	h := &Handler{Run: func(ctx context.Context, _ <-chan struct{}, ready func()) error {
		ready()
		<-ctx.Done()
		return nil
	}}
	m := startSCM(t, h)
	m.expect(StartPending, time.Second)
	m.expect(Running, time.Second)
	m.send(Shutdown)
	m.expect(StopPending, time.Second)
	if code := m.exit(5 * time.Second); code != ExitOK {
		t.Errorf("exit code %d, want 0", code)
	}
}

// A monitor that cannot start fails the service, so that its recovery
// actions restart it, and says why in the Event Log.
func TestStartFailureFailsTheService(t *testing.T) {
	ev := &events{}
	h := &Handler{Events: ev, Run: func(context.Context, <-chan struct{}, func()) error {
		return errors.New("listen on :19740: address already in use")
	}}
	m := startSCM(t, h)
	m.expect(StartPending, time.Second)
	if code := m.exit(5 * time.Second); code != ExitFailed {
		t.Errorf("exit code %d, want %d", code, ExitFailed)
	}
	select {
	case st := <-m.s:
		t.Errorf("status %s reported by a service that never started", StateName(st.State))
	default:
	}
	if !ev.has("4 error tpwatch could not start: listen on :19740") {
		t.Errorf("Event Log: %q, want event 4 saying why", ev.list())
	}
}

// A monitor that dies while running (its metrics endpoint failed) fails
// the service too.
func TestMonitorEndingByItselfFailsTheService(t *testing.T) {
	ev := &events{}
	die := make(chan struct{})
	h := &Handler{Events: ev, Run: func(_ context.Context, _ <-chan struct{}, ready func()) error {
		ready()
		<-die
		return errors.New("metrics endpoint stopped")
	}}
	m := startSCM(t, h)
	m.expect(StartPending, time.Second)
	m.expect(Running, time.Second)
	close(die)
	if code := m.exit(5 * time.Second); code != ExitFailed {
		t.Errorf("exit code %d, want %d", code, ExitFailed)
	}
	if !ev.has("4 error tpwatch stopped on an error") {
		t.Errorf("Event Log: %q", ev.list())
	}
}

// A monitor that does not stop within the wait hint is abandoned at the
// hint, with progress reported meanwhile, and the service still stops
// cleanly as far as the control manager is concerned.
func TestStopThatHangsEndsAtTheWaitHint(t *testing.T) {
	ev := &events{}
	hang := make(chan struct{})
	defer close(hang)
	h := &Handler{Events: ev, StopHint: 500 * time.Millisecond, Run: func(_ context.Context, _ <-chan struct{}, ready func()) error {
		ready()
		<-hang
		return nil
	}}
	m := startSCM(t, h)
	m.expect(StartPending, time.Second)
	m.expect(Running, time.Second)
	start := time.Now()
	m.send(Stop)
	m.expect(StopPending, time.Second)
	code := m.exit(3 * time.Second)
	took := time.Since(start)
	if code != ExitOK {
		t.Errorf("exit code %d, want 0", code)
	}
	if took < 450*time.Millisecond || took > 2*time.Second {
		t.Errorf("Execute returned %v after the stop, want about the 500ms wait hint", took)
	}
	checkpoints := 0
	for len(m.s) > 0 {
		if st := <-m.s; st.State == StopPending && st.CheckPoint > 0 {
			checkpoints++
		}
	}
	if checkpoints < 2 {
		t.Errorf("%d stop checkpoints reported, want progress every fifth of the hint", checkpoints)
	}
	if !ev.has("4 error tpwatch did not stop within 500ms") {
		t.Errorf("Event Log: %q", ev.list())
	}
}

// idleBackend opens captures that never see a packet: each Next waits a
// little and reports an idle moment, as a quiet interface does.
type idleBackend struct{}

func (idleBackend) Open(iface string, o live.Options) (daemon.Capture, error) {
	return &idleCapture{closed: make(chan struct{})}, nil
}
func (idleBackend) CheckFilter(expr string, o live.Options) error { return nil }

type idleCapture struct {
	once   sync.Once
	closed chan struct{}
}

func (c *idleCapture) Next(r *capture.Record) error {
	select {
	case <-c.closed:
		return io.EOF
	case <-time.After(10 * time.Millisecond):
		return &capture.Idle{Now: time.Now().UnixNano()}
	}
}
func (c *idleCapture) Close() error                  { c.once.Do(func() { close(c.closed) }); return nil }
func (c *idleCapture) Link() capture.LinkType        { return capture.LinkEthernet }
func (c *idleCapture) Stats() (live.Stats, error)    { return live.Stats{}, nil }
func (c *idleCapture) SetFilter(expr string) error   { return nil }
func (c *idleCapture) CheckFilter(expr string) error { return nil }

// The real daemon under the handler: ParamChange reloads the config as
// SIGHUP does (a broken file keeps the old config and sets
// tpwatch_config_last_reload_successful to 0), Stop flushes and stops
// within the wait hint, and the lifecycle reaches the Event Log through
// the daemon's own log.
func TestDaemonUnderTheServiceHandler(t *testing.T) {
	site := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(site, []byte("roles:\n  enterprise-manager: [192.0.2.10]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	var logBuf lockedBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(&logBuf, EventWriter{Sink: ev})).With().Timestamp().Logger()
	daemons := make(chan *daemon.Daemon, 1)
	h := &Handler{
		Events:   ev,
		StopHint: 5 * time.Second,
		Run: func(ctx context.Context, reload <-chan struct{}, ready func()) error {
			d, err := daemon.New(daemon.Config{
				Interfaces: []string{"Ethernet0"},
				ConfigFile: site,
				Listeners:  []net.Listener{ln},
				Backend:    idleBackend{},
				Reload:     reload,
				Ready:      ready,
			}, log)
			if err != nil {
				return err
			}
			daemons <- d
			return d.Run(ctx)
		},
	}
	m := startSCM(t, h)
	m.expect(StartPending, time.Second)
	m.expect(Running, 5*time.Second)
	d := <-daemons

	if err := os.WriteFile(site, []byte("roles:\n  agnet: [192.0.2.20]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.send(ParamChange)
	m.expect(Running, time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for gauge(t, d, "tpwatch_config_last_reload_successful") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after ParamChange with a broken config, tpwatch_config_last_reload_successful is still 1\n%s", logBuf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logBuf.String(), `unknown role \"agnet\"`) {
		t.Errorf("the failed reload's log does not name the bad role:\n%s", logBuf.String())
	}

	start := time.Now()
	m.send(Stop)
	m.expect(StopPending, time.Second)
	if code := m.exit(5 * time.Second); code != ExitOK {
		t.Errorf("exit code %d, want 0", code)
	}
	t.Logf("stopped %v after Stop (wait hint 5s)", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{"1 info tpwatch running", "10 info capturing", "21 error config reload failed", "2 info stopping", "3 info stopped"} {
		if !ev.has(want) {
			t.Errorf("Event Log lacks %q: %q", want, ev.list())
		}
	}
	for _, e := range ev.list() {
		if strings.HasSuffix(e, " flow") {
			t.Errorf("a flow event reached the Event Log: %q", e)
		}
	}
}

func gauge(t *testing.T, d *daemon.Daemon, name string) float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return metricValue(mf.GetMetric()[0])
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func metricValue(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
