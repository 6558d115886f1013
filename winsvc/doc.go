// Package winsvc runs `tpwatch run` as a Windows service, and installs,
// starts, stops, queries and removes that service.
//
// The handler (Handler.Execute) is the service's life under the service
// control manager: start pending until the daemon monitors, running
// while it does, a reload on ParamChange (`sc control tpwatch
// paramchange`, the Windows counterpart of SIGHUP), and on Stop or
// Shutdown a clean stop (the flow tables flushed) within the wait hint it
// announced. It is plain Go, built on every system, and driven in tests
// through a fake change-request channel; service_windows.go only adapts
// golang.org/x/sys/windows/svc to it.
//
// A service has no console: its log goes to a file under
// %ProgramData%\tpwatch (internal/logfile), and the lifecycle events of
// that log (started, stopping, stopped, capture up and down, reloads, a
// failing metrics listener) are mirrored to the Windows Event Log with
// stable event IDs (see EventWriter). Flow events never are: the Event Log
// is no place for thousands of them.
//
// Install registers `tpwatch.exe run FLAGS` with the service control
// manager: automatic (delayed) start, LocalSystem (what Npcap's
// administrators-only mode needs), a dependency on Npcap's driver service,
// restarts after a failure, and the Event Log source. Npcap itself is not
// bundled (its licence forbids it): Install says when it is missing.
package winsvc
