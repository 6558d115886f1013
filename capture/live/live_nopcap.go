//go:build !cgo && !windows

package live

import (
	"fmt"

	"github.com/tpwatch/tpwatch/capture"
)

// errNoLibpcap says why, and how to get live capture.
var errNoLibpcap = fmt.Errorf("%w in this build: built without cgo, and live capture needs libpcap (rebuild with CGO_ENABLED=1 and libpcap-dev installed; replay of capture files works)", ErrUnavailable)

// Handle would be a live capture handle; this build cannot open one.
type Handle struct{}

var _ capture.Reader = (*Handle)(nil)

// Open reports that this binary cannot capture live traffic.
func Open(iface string, o Options) (*Handle, error) {
	return nil, fmt.Errorf("open %s: %w", iface, errNoLibpcap)
}

// Interfaces reports that this binary cannot list capture interfaces.
func Interfaces() ([]Interface, error) { return nil, errNoLibpcap }

// CheckFilter reports that this binary cannot compile a filter.
func CheckFilter(expr string, link capture.LinkType, o Options) error { return errNoLibpcap }

// Next reports that this binary cannot capture live traffic.
func (l *Handle) Next(r *capture.Record) error { return errNoLibpcap }

// Stats reports that this binary cannot capture live traffic.
func (l *Handle) Stats() (Stats, error) { return Stats{}, errNoLibpcap }

// SetFilter reports that this binary cannot capture live traffic.
func (l *Handle) SetFilter(expr string) error { return errNoLibpcap }

// CheckFilter fails: there is no libpcap to compile a filter.
func (l *Handle) CheckFilter(expr string) error { return errNoLibpcap }

// Link reports no link type: nothing was opened.
func (l *Handle) Link() capture.LinkType { return capture.LinkType(0) }

// Close does nothing.
func (l *Handle) Close() error { return nil }
