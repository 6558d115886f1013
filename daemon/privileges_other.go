//go:build !linux

package daemon

import (
	"fmt"
	"runtime"
)

// dropPrivileges is implemented on Linux only; elsewhere run tpwatch as a
// service account that may capture (Npcap's "restrict to administrators"
// off on Windows).
func dropPrivileges(name string) error {
	return fmt.Errorf("switching user is not implemented on %s", runtime.GOOS)
}
