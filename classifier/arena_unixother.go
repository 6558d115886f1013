//go:build unix && !linux

package classifier

// mapNoReserve: the BSDs and macOS back anonymous mappings lazily without
// being asked (FreeBSD has no such flag).
const mapNoReserve = 0
