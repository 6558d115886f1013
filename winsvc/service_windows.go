//go:build windows

package winsvc

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// waitStep is how often Start and Stop look at the service's state.
const waitStep = 250 * time.Millisecond

// npcapServices are the names of Npcap's driver service: npcap in its
// native mode, npf in WinPcap-compatible mode (and for WinPcap itself).
var npcapServices = []string{"npcap", "npf"}

// IsService reports whether the service control manager started this
// process. x/sys's test also wants the process in session 0, which
// services in Windows containers (and under Wine) are not in: a parent
// named services.exe is enough, as windows_exporter found (its issue
// #1045, after DataDog's agent).
func IsService() (bool, error) {
	if ok, err := svc.IsWindowsService(); ok || err != nil {
		return ok, err
	}
	return parentIsServices()
}

// parentIsServices reports whether this process's parent is services.exe.
func parentIsServices() (bool, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return false, fmt.Errorf("list processes: %w", err)
	}
	defer windows.CloseHandle(snap)
	self := windows.GetCurrentProcessId()
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	parent := uint32(0)
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if e.ProcessID == self {
			parent = e.ParentProcessID
			break
		}
	}
	if parent == 0 {
		return false, nil
	}
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if e.ProcessID == parent {
			return strings.EqualFold(windows.UTF16ToString(e.ExeFile[:]), "services.exe"), nil
		}
	}
	return false, nil
}

// RunService runs h as the service Name until it stops. It returns once
// the service has stopped, or at once when the process was not started
// by the service control manager.
func RunService(h *Handler) error {
	if err := svc.Run(Name, adapter{h}); err != nil {
		return fmt.Errorf("run as the %s service: %w", Name, err)
	}
	return nil
}

// adapter turns x/sys's svc.Handler calls into Handler ones.
type adapter struct{ h *Handler }

func (a adapter) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	reqs := make(chan ChangeRequest)
	stats := make(chan Status)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case c := <-r:
				select {
				case reqs <- ChangeRequest{Cmd: Cmd(c.Cmd), CurrentStatus: Status{
					State: State(c.CurrentStatus.State), Accepts: Accepted(c.CurrentStatus.Accepts),
					CheckPoint: c.CurrentStatus.CheckPoint, WaitHint: c.CurrentStatus.WaitHint}}:
				case <-stop:
					return
				}
			case <-stop:
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case st := <-stats:
				select {
				case s <- svc.Status{State: svc.State(st.State), Accepts: svc.Accepted(st.Accepts), CheckPoint: st.CheckPoint, WaitHint: st.WaitHint}:
				case <-stop:
					// svc.Run reports Stopped itself once Execute returns.
					return
				}
			case <-stop:
				return
			}
		}
	}()
	code := a.h.Execute(reqs, stats)
	return code != ExitOK, code
}

// eventLog is the Windows Event Log as an EventSink.
type eventLog struct{ l *eventlog.Log }

func (e eventLog) Event(id uint32, sev Severity, msg string) {
	switch sev {
	case Error:
		e.l.Error(id, msg)
	case Warning:
		e.l.Warning(id, msg)
	default:
		e.l.Info(id, msg)
	}
}

// OpenEventLog opens the service's Event Log source (Install registers
// it).
func OpenEventLog() (EventSink, io.Closer, error) {
	l, err := eventlog.Open(Name)
	if err != nil {
		return nil, nil, fmt.Errorf("open the Event Log source %s: %w", Name, err)
	}
	return eventLog{l}, l, nil
}

// Install registers the service: automatic start (delayed), as LocalSystem, after Npcap's driver
// service, restarted 10 s, 30 s and 60 s after a failure (the count resets
// after a day without one), and its Event Log source. It returns notes for
// the user (Npcap missing, say).
func Install(o InstallOptions) ([]string, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect to the service control manager (run as an administrator): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(Name); err == nil {
		s.Close()
		return nil, fmt.Errorf("service %s is already installed: run tpwatch service uninstall first", Name)
	}
	var notes []string
	var deps []string
	if name, _ := npcapService(m); name != "" {
		deps = []string{name}
	} else {
		notes = append(notes, "Npcap is not installed: install it from https://npcap.com before starting the service (tpwatch cannot bundle it); the service was installed without a dependency on its driver")
	}
	s, err := m.CreateService(Name, o.Exe, mgr.Config{
		DisplayName:  "tpwatch (Threat Prevention flow monitor)",
		Description:  "Watches network flows against the Netwrix Threat Prevention firewall matrix and serves the verdicts as Prometheus metrics.",
		StartType:    mgr.StartAutomatic,
		ErrorControl: mgr.ErrorNormal,
		Dependencies: deps,
		// Empty: LocalSystem, the account Npcap's administrators-only
		// mode admits.
		ServiceStartName: "",
	}, o.Args...)
	if err != nil {
		return nil, fmt.Errorf("create service %s: %w", Name, err)
	}
	defer s.Close()
	fail := func(what string, err error) ([]string, error) {
		s.Delete()
		return nil, fmt.Errorf("create service %s: %s: %w", Name, what, err)
	}
	// Delayed, so that the network and Npcap's driver are up. Set apart
	// from the creation (where a failure would undo it) since Wine's
	// service manager lacks this setting, which is not worth failing for.
	delayed := windows.SERVICE_DELAYED_AUTO_START_INFO{IsDelayedAutoStartUp: 1}
	if err := windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed))); err != nil {
		notes = append(notes, fmt.Sprintf("the service starts with Windows, without the delay after the other services (%v)", err))
	}
	if err := s.SetRecoveryActions([]mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 60 * time.Second},
	}, 24*60*60); err != nil {
		return fail("recovery actions", err)
	}
	// A failure is also a stop with a non-zero exit code (a bad config, a
	// metrics port in use), not only a crash. Wine lacks this setting.
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		notes = append(notes, fmt.Sprintf("the service is restarted after a crash only, not after stopping on an error (%v)", err))
	}
	if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		// A source left by an earlier install is fine.
		if !alreadyExists(err) {
			return fail("Event Log source", err)
		}
	}
	return notes, nil
}

// alreadyExists recognises eventlog.InstallAsEventCreate's error for a
// source an earlier install registered: a plain error ("... registry key
// already exists"), not an errno.
func alreadyExists(err error) bool {
	return strings.Contains(err.Error(), "already exists")
}

// npcapService returns the name and state of Npcap's driver service, or
// "" when neither exists.
func npcapService(m *mgr.Mgr) (string, string) {
	for _, name := range npcapServices {
		s, err := m.OpenService(name)
		if err != nil {
			continue
		}
		st, err := s.Query()
		s.Close()
		if err != nil {
			return name, "unknown"
		}
		return name, StateName(State(st.State))
	}
	return "", "not installed"
}

// Uninstall stops the service if it runs (waiting at most wait) and
// removes it and its Event Log source. The log and config files stay.
func Uninstall(wait time.Duration) error {
	m, s, err := open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := stopAndWait(s, wait); err != nil {
			return err
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service %s: %w", Name, err)
	}
	if err := eventlog.Remove(Name); err != nil {
		return fmt.Errorf("remove the Event Log source %s: %w", Name, err)
	}
	return nil
}

// Start starts the service and waits at most wait until it runs.
func Start(wait time.Duration) error {
	m, s, err := open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	// Already running is what was asked for (Wine's service manager, for
	// one, starts automatic services whenever it starts itself).
	if err := s.Start(); err != nil && !errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		return fmt.Errorf("start service %s: %w", Name, err)
	}
	deadline := time.Now().Add(wait)
	for {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("query service %s: %w", Name, err)
		}
		switch st.State {
		case svc.Running:
			return nil
		case svc.Stopped:
			return fmt.Errorf("service %s stopped while starting (exit code %d): see the Event Log (source %s) and %s", Name, st.ServiceSpecificExitCode, Name, DefaultLogFile())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s is still %s after %v", Name, StateName(State(st.State)), wait)
		}
		time.Sleep(waitStep)
	}
}

// StopService stops the service and waits at most wait until it has.
func StopService(wait time.Duration) error {
	m, s, err := open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	return stopAndWait(s, wait)
}

func stopAndWait(s *mgr.Service, wait time.Duration) error {
	st, err := s.Control(svc.Stop)
	if err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return fmt.Errorf("stop service %s: %w", Name, err)
	}
	deadline := time.Now().Add(wait)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s is still %s after %v", Name, StateName(State(st.State)), wait)
		}
		time.Sleep(waitStep)
		if st, err = s.Query(); err != nil {
			return fmt.Errorf("query service %s: %w", Name, err)
		}
	}
	return nil
}

// Reload asks the running service to read its config again: the
// ParamChange control, as `sc control tpwatch paramchange` sends it.
func Reload() error {
	m, s, err := open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if _, err := s.Control(svc.ParamChange); err != nil {
		return fmt.Errorf("reload service %s: %w", Name, err)
	}
	return nil
}

// Query says how the service is installed and what it is doing.
func Query() (ServiceInfo, error) {
	m, s, err := open()
	if err != nil {
		return ServiceInfo{}, err
	}
	defer m.Disconnect()
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return ServiceInfo{}, fmt.Errorf("query service %s: %w", Name, err)
	}
	info, err := serviceConfig(s.Handle)
	if err != nil {
		return ServiceInfo{}, fmt.Errorf("read the config of service %s: %w", Name, err)
	}
	info.State, info.PID, info.ExitCode = State(st.State), st.ProcessId, st.ServiceSpecificExitCode
	info.NpcapService, info.Npcap = npcapService(m)
	return info, nil
}

// open connects to the service control manager and opens the service.
func open() (*mgr.Mgr, *mgr.Service, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the service control manager (run as an administrator): %w", err)
	}
	s, err := m.OpenService(Name)
	if err != nil {
		m.Disconnect()
		if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
			return nil, nil, fmt.Errorf("service %s is not installed (tpwatch service install --interface NAME ...)", Name)
		}
		return nil, nil, fmt.Errorf("open service %s: %w", Name, err)
	}
	return m, s, nil
}

// serviceConfig reads what ServiceInfo holds of the service's
// configuration. mgr.Service.Config would too, but it fails as a whole
// where one of its optional parts is missing (Wine has no delayed start).
func serviceConfig(h windows.Handle) (ServiceInfo, error) {
	var p *windows.QUERY_SERVICE_CONFIG
	n := uint32(1024)
	for {
		b := make([]byte, n)
		p = (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
		err := windows.QueryServiceConfig(h, p, n, &n)
		if err == nil {
			break
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return ServiceInfo{}, err
		}
	}
	info := ServiceInfo{
		Automatic:    p.StartType == mgr.StartAutomatic,
		Command:      windows.UTF16PtrToString(p.BinaryPathName),
		Account:      windows.UTF16PtrToString(p.ServiceStartName),
		Dependencies: multiString(p.Dependencies),
	}
	var delayed windows.SERVICE_DELAYED_AUTO_START_INFO
	if windows.QueryServiceConfig2(h, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed)), uint32(unsafe.Sizeof(delayed)), &n) == nil {
		info.Delayed = delayed.IsDelayedAutoStartUp != 0
	}
	return info, nil
}

// multiString splits a Windows list of strings, each NUL-terminated, the
// list ended by an empty one.
func multiString(p *uint16) []string {
	var out []string
	if p == nil {
		return out
	}
	for {
		s := windows.UTF16PtrToString(p)
		if s == "" {
			return out
		}
		out = append(out, s)
		p = (*uint16)(unsafe.Add(unsafe.Pointer(p), 2*(len(windows.StringToUTF16(s)))))
	}
}
