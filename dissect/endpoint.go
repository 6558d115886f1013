package dissect

import "net/netip"

// Source says how an endpoint was learned.
type Source uint8

const (
	SourceInvalid Source = iota
	// SourceEPM: a tower of an ept_map response of the endpoint mapper.
	SourceEPM
	// SourceDCOM: a string binding of a DCOM activation or OXID
	// resolution response.
	SourceDCOM
	// SourceSSRP: an instance of a SQL Server Browser response.
	SourceSSRP
)

func (s Source) String() string {
	switch s {
	case SourceEPM:
		return "epm"
	case SourceDCOM:
		return "dcom"
	case SourceSSRP:
		return "ssrp"
	}
	return "invalid"
}

// maxHost bounds the host of a DCOM string binding that an Endpoint keeps:
// a NetBIOS name, an IPv4 or IPv6 literal or a short DNS name fits. A
// longer host is cut (HostCut is set); the port, which is what tpwatch
// keys on, is kept.
const maxHost = 64

// Endpoint is one (port, interface) an RPC server said it listens on. The
// server's address is not in it: tpwatch keys on the address of the
// connection the answer came in (research notes 1.5.2), because the
// address inside an answer may be 0.0.0.0, a NAT-ed or another interface's
// address, or a name.
type Endpoint struct {
	Source    Source
	Transport Transport
	Port      uint16
	// Interface and its version are those of the tower's first floor
	// (SourceEPM only); Name is Interface as a bounded label.
	Interface                  UUID
	Name                       Interface
	VersionMajor, VersionMinor uint16
	// Syntax is the transfer syntax of the tower's second floor.
	Syntax Syntax
	// Addr is the tower's IPv4 floor, or the binding's host when it is an
	// IPv4 literal; invalid when absent, 0.0.0.0 or a name.
	Addr netip.Addr
	// host holds a DCOM binding's host as ASCII (hostLen bytes).
	host    [maxHost]byte
	hostLen uint8
	// HostCut is set when the binding's host was longer than maxHost.
	HostCut bool
}

// Host returns the host of a DCOM string binding (empty for towers). The
// slice refers to the Endpoint's own array.
func (e *Endpoint) Host() []byte { return e.host[:e.hostLen] }

// maxEndpoints bounds the endpoints one call to Feed returns. An ept_map
// client asks for at most a handful of towers (Windows asks for 4), and a
// DCOM answer lists one binding per address of the server. More are
// counted in RPCResult.Dropped.
const maxEndpoints = 16

// RPCResult is what one segment fed to an RPCConn taught, and what it
// held that teaches nothing (for counters: research notes 1.5.4 count each
// of these under a reason). The caller reuses one; Feed resets it.
type RPCResult struct {
	Endpoints    [maxEndpoints]Endpoint
	NumEndpoints int
	// Dropped counts endpoints found beyond the capacity of Endpoints.
	Dropped int

	// Maps counts ept_map responses decoded (with or without towers).
	Maps int
	// Activations counts DCOM responses scanned for string bindings.
	Activations int
	// Encrypted counts responses of interest whose stub is sealed (auth
	// level privacy): nothing can be read from them.
	Encrypted int
	// Faults counts fault PDUs answering a call of interest.
	Faults int
	// Errors counts ept_map responses with a non-zero status; Status and
	// Asked are those of the last one (0x16c9a0d6 is
	// EPT_S_NOT_REGISTERED: the asked interface is not registered, not a
	// firewall problem). Asked is the interface the request asked for,
	// zero when the request was not seen.
	Errors int
	Status uint32
	Asked  UUID
	// Malformed counts PDUs or stubs of interest that did not decode:
	// lengths that disagree, counts beyond the bytes present, a stub that
	// is neither NDR nor NDR64.
	Malformed int
	// Truncated counts PDUs of interest not wholly captured (a snap
	// length, a lost segment) or too large to assemble.
	Truncated int
	// Unsynced counts bytes skipped because no PDU header was found where
	// one should start: a capture begun mid-stream, or a lost segment.
	Unsynced int
	// Retransmitted counts segments seen before (by sequence number).
	Retransmitted int
}

func (r *RPCResult) reset() {
	// Only the counters and the endpoints in use: clearing the whole
	// array on every segment would cost more than the parse.
	for i := range r.NumEndpoints {
		r.Endpoints[i] = Endpoint{}
	}
	r.NumEndpoints, r.Dropped = 0, 0
	r.Maps, r.Activations, r.Encrypted, r.Faults = 0, 0, 0, 0
	r.Errors, r.Status, r.Asked = 0, 0, UUID{}
	r.Malformed, r.Truncated, r.Unsynced, r.Retransmitted = 0, 0, 0, 0
}

// add returns the next free Endpoint, or nil (counting it as dropped).
func (r *RPCResult) add() *Endpoint {
	if r.NumEndpoints >= len(r.Endpoints) {
		r.Dropped++
		return nil
	}
	e := &r.Endpoints[r.NumEndpoints]
	r.NumEndpoints++
	return e
}
