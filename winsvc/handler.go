package winsvc

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// State, Cmd, Accepted, Status and ChangeRequest mirror
// golang.org/x/sys/windows/svc (with the same values), which is built on
// Windows only: with them the handler's logic compiles, and is tested, on
// every system.
type (
	State    uint32
	Cmd      uint32
	Accepted uint32
)

// The values of Windows' SERVICE_* constants.
const (
	Stopped      State = 1
	StartPending State = 2
	StopPending  State = 3
	Running      State = 4

	Stop        Cmd = 1
	Interrogate Cmd = 4
	Shutdown    Cmd = 5
	ParamChange Cmd = 6

	AcceptStop        Accepted = 1
	AcceptShutdown    Accepted = 4
	AcceptParamChange Accepted = 8
)

// Status is what the service reports to the service control manager.
type Status struct {
	State      State
	Accepts    Accepted
	CheckPoint uint32 // grows while a pending operation progresses
	WaitHint   uint32 // milliseconds the pending operation may still take
}

// ChangeRequest is a request of the service control manager.
type ChangeRequest struct {
	Cmd           Cmd
	CurrentStatus Status
}

// Exit codes of Execute, reported as the service-specific exit code: a
// service that stops with one of them has failed, and the recovery actions
// Install sets up restart it.
const (
	ExitOK = 0
	// ExitFailed: the monitor could not start (a bad config, a port in
	// use, no Npcap), or stopped by itself.
	ExitFailed = 1
)

// Defaults of Handler.
const (
	// DefaultStartHint is the wait hint while starting: the captures and
	// listeners open in well under a second, a config of thousands of
	// addresses compiles in a few.
	DefaultStartHint = 30 * time.Second
	// DefaultStopHint is the wait hint while stopping: closing a capture
	// waits at most its read timeout, and flushing the flow tables takes
	// milliseconds.
	DefaultStopHint = 15 * time.Second
)

// Handler runs the monitor under the service control manager.
type Handler struct {
	// Run monitors until ctx is done and returns nil after a clean stop.
	// It does a reload on each receive from reload, and calls ready once,
	// when it monitors. An error before ready means it could not start.
	Run func(ctx context.Context, reload <-chan struct{}, ready func()) error
	// Events receives the service's own lifecycle events (the monitor's
	// come through its log: see EventWriter); nil means none.
	Events EventSink
	// StartHint and StopHint are the wait hints announced while starting
	// and stopping (0: the defaults). A stop that takes longer than
	// StopHint is abandoned: Execute returns and the process ends.
	StartHint, StopHint time.Duration
}

// Execute is the service's life: see the package comment. It returns the
// exit code to report (ExitOK or ExitFailed) once the service has
// stopped.
func (h *Handler) Execute(r <-chan ChangeRequest, s chan<- Status) uint32 {
	startHint, stopHint := h.StartHint, h.StopHint
	if startHint <= 0 {
		startHint = DefaultStartHint
	}
	if stopHint <= 0 {
		stopHint = DefaultStopHint
	}
	current := Status{State: StartPending, WaitHint: millis(startHint)}
	s <- current

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{}, 1)
	ready := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- h.Run(ctx, reload, func() { once.Do(func() { close(ready) }) })
	}()

	for {
		select {
		case <-ready:
			ready = nil
			current = Status{State: Running, Accepts: AcceptStop | AcceptShutdown | AcceptParamChange}
			s <- current
		case err := <-done:
			// The monitor ended without being asked to: it could not
			// start, or its metrics endpoint died. Failing lets the
			// recovery actions restart it.
			if err == nil {
				err = fmt.Errorf("the monitor stopped by itself")
			}
			if current.State == StartPending {
				h.event(EventFailed, Error, "tpwatch could not start: "+err.Error())
			} else {
				h.event(EventFailed, Error, "tpwatch stopped on an error: "+err.Error())
			}
			return ExitFailed
		case c := <-r:
			switch c.Cmd {
			case Interrogate:
				s <- current
			case ParamChange:
				select {
				case reload <- struct{}{}:
				default: // a reload is already queued
				}
				s <- current
			case Stop, Shutdown:
				return h.stop(cancel, done, s, stopHint)
			}
		}
	}
}

// stop asks the monitor to stop and waits for it at most hint, telling
// the service control manager that the stop progresses meanwhile. A
// requested stop always ends with ExitOK: a failure code would make the
// recovery actions restart a service an administrator stopped.
func (h *Handler) stop(cancel context.CancelFunc, done <-chan error, s chan<- Status, hint time.Duration) uint32 {
	pending := Status{State: StopPending, WaitHint: millis(hint)}
	s <- pending
	cancel()
	deadline := time.NewTimer(hint)
	defer deadline.Stop()
	// A checkpoint a fifth of the hint apart shows the control manager the
	// stop is not hung, well before the hint runs out.
	tick := time.NewTicker(hint / 5)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				h.event(EventFailed, Error, "tpwatch stopped with an error: "+err.Error())
			}
			return ExitOK
		case <-tick.C:
			pending.CheckPoint++
			s <- pending
		case <-deadline.C:
			h.event(EventFailed, Error, fmt.Sprintf("tpwatch did not stop within %v; ending it", hint))
			return ExitOK
		}
	}
}

func (h *Handler) event(id uint32, sev Severity, msg string) {
	if h.Events != nil {
		h.Events.Event(id, sev, msg)
	}
}

func millis(d time.Duration) uint32 { return uint32(d / time.Millisecond) }
