//go:build unix

package classifier

import "golang.org/x/sys/unix"

// mapBytes maps n zeroed bytes that the system backs only when written
// (and, where it can be said, without reserving swap for them).
func mapBytes(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, max(n, 1), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|mapNoReserve)
}

func unmapBytes(b []byte) { _ = unix.Munmap(b) }
