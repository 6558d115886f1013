package dissect

import "net/netip"

// DCOM activation answers (RemoteCreateInstance, RemoteActivation, OXID
// resolution) name the object exporter's port in a DUALSTRINGARRAY of
// STRINGBINDINGs (MS-DCOM 2.2.19.3): wTowerId u16 (0x0007 ncacn_ip_tcp),
// then a NUL-terminated UTF-16LE "host[port]" (research notes 1.7). The
// array sits deep inside the activation properties; finding the bindings by
// their shape is cheap and independent of that nesting, and nothing else
// in a cleartext answer looks like a tower id followed by a UTF-16 host and
// a bracketed decimal port.

const (
	towerIDTCP = 0x0007
	// maxBindingHost bounds the host characters of a binding that is
	// read at all: a DNS name has at most 253.
	maxBindingHost = 255
	maxPortDigits  = 5
)

// scanStringBindings finds the ncacn_ip_tcp string bindings in b and
// returns how many it found; with out, it records each as an Endpoint.
func scanStringBindings(b []byte, out *RPCResult) int {
	n := 0
	for i := 0; i+2 <= len(b); i++ {
		if b[i] != byte(towerIDTCP) || b[i+1] != byte(towerIDTCP>>8) {
			continue
		}
		var e Endpoint
		used, ok := readBinding(b[i+2:], &e)
		if !ok {
			continue
		}
		n++
		if out != nil {
			if dst := out.add(); dst != nil {
				*dst = e
			}
		}
		i += 2 + used - 1
	}
	return n
}

// readBinding reads `host[port]` and its two NUL bytes from the start of
// b, as UTF-16LE of ASCII characters, into e. used is the number of bytes
// read.
func readBinding(b []byte, e *Endpoint) (used int, ok bool) {
	char := func(i int) (byte, bool) {
		if 2*i+1 >= len(b) || b[2*i+1] != 0 {
			return 0, false
		}
		return b[2*i], true
	}
	i := 0
	for ; ; i++ {
		c, ok := char(i)
		if !ok || i > maxBindingHost {
			return 0, false
		}
		if c == '[' {
			break
		}
		if !isHostChar(c) {
			return 0, false
		}
		if i < maxHost {
			e.host[i] = c
		}
	}
	if i == 0 {
		return 0, false
	}
	e.hostLen = uint8(min(i, maxHost))
	e.HostCut = i > maxHost
	port := 0
	digits := 0
	for i++; ; i++ {
		c, ok := char(i)
		if !ok {
			return 0, false
		}
		if c == ']' {
			break
		}
		if c < '0' || c > '9' || digits == maxPortDigits {
			return 0, false
		}
		port = port*10 + int(c-'0')
		digits++
	}
	if digits == 0 || port == 0 || port > 65535 {
		return 0, false
	}
	if c, ok := char(i + 1); !ok || c != 0 {
		return 0, false
	}
	e.Source = SourceDCOM
	e.Transport = TCP
	e.Port = uint16(port)
	if a, ok := parseIPv4(e.host[:e.hostLen]); ok && !e.HostCut {
		e.Addr = a
	}
	return 2 * (i + 2), true
}

// isHostChar accepts the characters of a host name or an IPv4 or IPv6
// literal (with a zone).
func isHostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '-' || c == '_' || c == ':' || c == '%'
}

// parseIPv4 reads a dotted-quad IPv4 address; 0.0.0.0 is refused (no
// address).
func parseIPv4(s []byte) (netip.Addr, bool) {
	var a [4]byte
	field, digits, val := 0, 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			if digits == 3 || (digits > 0 && val == 0) {
				return netip.Addr{}, false // too long, or a leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || field == 3 {
				return netip.Addr{}, false
			}
			a[field] = byte(val)
			field, digits, val = field+1, 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if field != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	a[3] = byte(val)
	if a == [4]byte{} {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}
