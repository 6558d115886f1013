package policy

import (
	"fmt"
	"strconv"
	"strings"
)

const portSyntax = "want a port 1-65535 or a range such as 49152-65535"

// parsePortRange reads "3741" or "49152-65535". On failure it returns what
// is wrong and how to fix it, for the caller to put after the bad text.
func parsePortRange(s string) (PortRange, string) {
	lowText, highText, isRange := strings.Cut(s, "-")
	low, err := parsePort(lowText)
	if err != nil {
		return PortRange{}, portSyntax
	}
	high := low
	if isRange {
		if high, err = parsePort(highText); err != nil {
			return PortRange{}, portSyntax
		}
		if low > high {
			return PortRange{}, fmt.Sprintf("low is above high; write %d-%d", high, low)
		}
	}
	return PortRange{Low: low, High: high}, ""
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

func (p PortRange) String() string {
	if p.Low == p.High {
		return strconv.Itoa(int(p.Low))
	}
	return strconv.Itoa(int(p.Low)) + "-" + strconv.Itoa(int(p.High))
}

// Has reports whether port is in the range.
func (p PortRange) Has(port uint16) bool { return p.Low <= port && port <= p.High }

func parseTransport(s string) (Transport, bool) {
	switch s {
	case "tcp":
		return TCP, true
	case "udp":
		return UDP, true
	}
	return 0, false
}
