//go:build !cgo && !windows

package capture

import (
	"errors"
	"fmt"
)

// errNoLibpcap is what every live capture call returns in a binary built
// without cgo on a system where libpcap can only be reached through it.
var errNoLibpcap = errors.New("built without cgo: live capture needs libpcap (rebuild with CGO_ENABLED=1 and libpcap-dev installed; replay of capture files works)")

// Live would be a live capture handle; this build cannot open one.
type Live struct{}

var _ Reader = (*Live)(nil)

// OpenLive reports that this binary cannot capture live traffic.
func OpenLive(iface string, o LiveOptions) (*Live, error) {
	return nil, fmt.Errorf("open %s: %w", iface, errNoLibpcap)
}

// Next reports that this binary cannot capture live traffic.
func (l *Live) Next(r *Record) error { return errNoLibpcap }

// Stats reports that this binary cannot capture live traffic.
func (l *Live) Stats() (received, kernelDrops, ifDrops uint64, err error) {
	return 0, 0, 0, errNoLibpcap
}

// SetFilter reports that this binary cannot capture live traffic.
func (l *Live) SetFilter(expr string) error { return errNoLibpcap }

// CheckFilter fails: there is no libpcap to compile a filter.
func (l *Live) CheckFilter(expr string) error { return errNoLibpcap }

// Link reports no link type: nothing was opened.
func (l *Live) Link() LinkType { return LinkType(0) }

// Close does nothing.
func (l *Live) Close() error { return nil }
