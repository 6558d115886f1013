package classifier

import "golang.org/x/sys/unix"

// mapNoReserve keeps Linux, under its default overcommit heuristic, from
// counting the whole mapping against memory and swap: only the pages the
// table touches are ever backed.
const mapNoReserve = unix.MAP_NORESERVE
