//go:build !windows

package winsvc

import (
	"io"
	"time"
)

// IsService reports false: services are a Windows notion.
func IsService() (bool, error) { return false, nil }

// RunService reports that services exist on Windows only.
func RunService(h *Handler) error { return ErrNotWindows }

// OpenEventLog reports that the Event Log exists on Windows only.
func OpenEventLog() (EventSink, io.Closer, error) { return nil, nil, ErrNotWindows }

// Install reports that services exist on Windows only.
func Install(o InstallOptions) ([]string, error) { return nil, ErrNotWindows }

// Uninstall reports that services exist on Windows only.
func Uninstall(wait time.Duration) error { return ErrNotWindows }

// Start reports that services exist on Windows only.
func Start(wait time.Duration) error { return ErrNotWindows }

// StopService reports that services exist on Windows only.
func StopService(wait time.Duration) error { return ErrNotWindows }

// Reload reports that services exist on Windows only.
func Reload() error { return ErrNotWindows }

// Query reports that services exist on Windows only.
func Query() (ServiceInfo, error) { return ServiceInfo{}, ErrNotWindows }
