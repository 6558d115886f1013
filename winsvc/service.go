package winsvc

import (
	"errors"
	"os"
	"path/filepath"
)

// Name is the service's name for the service control manager (`sc query
// tpwatch`), and the source of its Event Log entries.
const Name = "tpwatch"

// ErrNotWindows is what the service functions return on other systems.
var ErrNotWindows = errors.New("the service commands are for Windows; on Linux run tpwatch under systemd (deploy/systemd/README.md)")

// DataDir is where the service keeps its config and its log:
// %ProgramData%\tpwatch (C:\ProgramData\tpwatch).
func DataDir() string {
	base := os.Getenv("ProgramData")
	if base == "" {
		base = `C:\ProgramData`
	}
	return filepath.Join(base, Name)
}

// DefaultConfigFile and DefaultLogFile are the service's config and log
// under DataDir.
func DefaultConfigFile() string { return filepath.Join(DataDir(), "site.yaml") }
func DefaultLogFile() string    { return filepath.Join(DataDir(), "tpwatch.log") }

// InstallOptions say how to install the service.
type InstallOptions struct {
	// Exe is the absolute path of tpwatch.exe, Args its arguments
	// ("run" and its flags).
	Exe  string
	Args []string
}

// ServiceInfo is what Query says of the installed service.
type ServiceInfo struct {
	State        State
	PID          uint32
	ExitCode     uint32 // the service-specific exit code of its last stop
	Automatic    bool   // starts with Windows
	Delayed      bool   // ... after the other automatic services
	Command      string // the command line the service runs
	Account      string // the account it runs as
	Dependencies []string
	// Npcap is the state of Npcap's driver service ("running",
	// "stopped", "not installed"), NpcapService its name.
	Npcap, NpcapService string
}

// StateName says a state in words.
func StateName(s State) string {
	switch s {
	case Stopped:
		return "stopped"
	case StartPending:
		return "starting"
	case StopPending:
		return "stopping"
	case Running:
		return "running"
	}
	return "unknown"
}
