package dissect

import "encoding/binary"

// SQL Server Resolution Protocol, the SQL Server Browser on UDP 1434
// (MC-SQLR 2.2; research notes 1.9).

// SSRPKind is the kind of a SQL Server Browser request.
type SSRPKind uint8

const (
	SSRPInvalid SSRPKind = iota
	// SSRPBroadcastEx (CLNT_BCAST_EX, 0x02): every instance on the
	// network.
	SSRPBroadcastEx
	// SSRPUnicastEx (CLNT_UCAST_EX, 0x03): every instance of one host.
	SSRPUnicastEx
	// SSRPUnicastInstance (CLNT_UCAST_INST, 0x04): one named instance.
	SSRPUnicastInstance
	// SSRPUnicastDAC (CLNT_UCAST_DAC, 0x0f 0x01): the dedicated admin
	// connection's port of one instance.
	SSRPUnicastDAC
)

func (k SSRPKind) String() string {
	switch k {
	case SSRPBroadcastEx:
		return "broadcast_ex"
	case SSRPUnicastEx:
		return "unicast_ex"
	case SSRPUnicastInstance:
		return "unicast_instance"
	case SSRPUnicastDAC:
		return "unicast_dac"
	}
	return "invalid"
}

// MC-SQLR message identifiers.
const (
	ssrpBroadcastEx = 0x02
	ssrpUnicastEx   = 0x03
	ssrpUnicastInst = 0x04
	ssrpResponse    = 0x05
	ssrpUnicastDAC  = 0x0f
	ssrpDACVersion  = 0x01
	// ssrpDACSize is a DAC answer's RESP_SIZE: there, the whole message.
	ssrpDACSize = 6
)

// Bounds of what an SSRP result keeps.
const (
	// maxInstanceName: MC-SQLR limits an instance name to 32 bytes
	// with its NUL (SQL Server's own limit is 16 characters).
	maxInstanceName = 32
	maxServerName   = 64
	maxVersion      = 32
	// maxInstances: research notes 1.9 cap the instances of one answer.
	maxInstances = 64
)

// SSRPRequest is a SQL Server Browser request.
type SSRPRequest struct {
	Kind        SSRPKind
	instance    [maxInstanceName]byte
	instanceLen uint8
}

// Instance returns the instance a CLNT_UCAST_INST or CLNT_UCAST_DAC asks
// for (its bytes, without the NUL).
func (r *SSRPRequest) Instance() []byte { return r.instance[:r.instanceLen] }

// ParseSSRPRequest reads a request sent to UDP 1434 into out and reports
// whether it is one.
func ParseSSRPRequest(payload []byte, out *SSRPRequest) bool {
	*out = SSRPRequest{}
	if len(payload) == 0 {
		return false
	}
	var name []byte
	switch payload[0] {
	case ssrpBroadcastEx, ssrpUnicastEx:
		if len(payload) != 1 {
			return false
		}
		out.Kind = SSRPBroadcastEx
		if payload[0] == ssrpUnicastEx {
			out.Kind = SSRPUnicastEx
		}
		return true
	case ssrpUnicastInst:
		out.Kind, name = SSRPUnicastInstance, payload[1:]
	case ssrpUnicastDAC:
		if len(payload) < 2 || payload[1] != ssrpDACVersion {
			return false
		}
		out.Kind, name = SSRPUnicastDAC, payload[2:]
	default:
		return false
	}
	// The name is NUL-terminated and at most 32 bytes with its NUL.
	if len(name) == 0 || len(name) > maxInstanceName || name[len(name)-1] != 0 {
		out.Kind = SSRPInvalid
		return false
	}
	name = name[:len(name)-1]
	for _, c := range name {
		if c < 0x20 || c == ';' {
			out.Kind = SSRPInvalid
			return false
		}
	}
	out.instanceLen = uint8(copy(out.instance[:], name))
	return true
}

// SSRPInstance is one instance of a SQL Server Browser answer.
type SSRPInstance struct {
	name       [maxInstanceName]byte
	nameLen    uint8
	server     [maxServerName]byte
	serverLen  uint8
	version    [maxVersion]byte
	versionLen uint8
	// Clustered is the IsClustered value ("Yes").
	Clustered bool
	// TCPPort is the instance's TCP port; 0 when it listens on none, or
	// announced one that is not a port (BadPort is then set).
	TCPPort uint16
	BadPort bool
	// Cut is set when a value was longer than its field here and was
	// cut (the port is never cut: a long one is a bad one).
	Cut bool
}

// Name returns the InstanceName.
func (i *SSRPInstance) Name() []byte { return i.name[:i.nameLen] }

// ServerName returns the ServerName.
func (i *SSRPInstance) ServerName() []byte { return i.server[:i.serverLen] }

// Version returns the Version.
func (i *SSRPInstance) Version() []byte { return i.version[:i.versionLen] }

// SSRPResponse is a SQL Server Browser answer (SVR_RESP).
type SSRPResponse struct {
	Instances    [maxInstances]SSRPInstance
	NumInstances int
	// DAC is set for the answer to a CLNT_UCAST_DAC, which names only
	// DACPort.
	DAC     bool
	DACPort uint16
	// Dropped counts instances beyond maxInstances.
	Dropped int
	// Malformed counts tcp values that are not ports 1-65535 and data
	// that does not follow the key;value grammar.
	Malformed int
	// Truncated is set when fewer bytes were captured than RESP_SIZE
	// says: the instances read are those wholly captured.
	Truncated bool
}

// ParseSSRPResponse reads a SQL Server Browser answer (from UDP 1434) into
// out and reports whether it is one.
//
// SVR_RESP is 0x05, RESP_SIZE (u16 little-endian, the length of RESP_DATA)
// and RESP_DATA: "key;value" pairs separated by ';', each instance ended by
// an empty key (";;"), several instances one after the other. The DAC
// answer is 0x05, RESP_SIZE 6 (there the whole message), version 0x01 and
// the port (u16 little-endian).
func ParseSSRPResponse(payload []byte, out *SSRPResponse) bool {
	for i := range out.NumInstances {
		out.Instances[i] = SSRPInstance{}
	}
	out.NumInstances, out.DAC, out.DACPort, out.Dropped, out.Malformed, out.Truncated = 0, false, 0, 0, 0, false
	if len(payload) < 3 || payload[0] != ssrpResponse {
		return false
	}
	size := int(binary.LittleEndian.Uint16(payload[1:]))
	if size == ssrpDACSize && len(payload) >= ssrpDACSize && payload[3] == ssrpDACVersion {
		port := binary.LittleEndian.Uint16(payload[4:])
		if port == 0 {
			out.Malformed++
			return true
		}
		out.DAC, out.DACPort = true, port
		return true
	}
	data := payload[3:]
	if len(data) > size {
		data = data[:size]
	} else if len(data) < size {
		out.Truncated = true
	}
	if size == 0 {
		return false
	}
	var inst SSRPInstance
	pairs := 0
	for len(data) > 0 {
		key, rest, found := cutSemicolon(data)
		if !found {
			if !out.Truncated {
				out.Malformed++ // data that ends inside a key
			}
			return true
		}
		data = rest
		if len(key) == 0 {
			if pairs > 0 {
				out.addInstance(&inst)
			}
			inst, pairs = SSRPInstance{}, 0
			continue
		}
		value, rest, found := cutSemicolon(data)
		if !found && out.Truncated {
			return true // the last value may have been cut: its instance is not whole
		}
		// Without its ';', the last value of the data still counts: the
		// grammar wants ";;", but a sender that omits it means the same.
		data = rest
		pairs++
		out.apply(&inst, key, value)
		if !found {
			out.addInstance(&inst)
			return true
		}
	}
	if pairs > 0 && !out.Truncated {
		out.addInstance(&inst) // data that ends with "value;" but no empty key
	}
	return true
}

func (r *SSRPResponse) addInstance(inst *SSRPInstance) {
	if r.NumInstances >= maxInstances {
		r.Dropped++
		return
	}
	r.Instances[r.NumInstances] = *inst
	r.NumInstances++
}

// apply sets the field of inst that key names. Keys are compared without
// regard to case; those tpwatch has no use for (np, via, rpc, spx, adsp,
// bv) are skipped.
func (r *SSRPResponse) apply(inst *SSRPInstance, key, value []byte) {
	switch {
	case equalFoldASCII(key, "InstanceName"):
		inst.nameLen = copyCut(inst.name[:], value, &inst.Cut)
	case equalFoldASCII(key, "ServerName"):
		inst.serverLen = copyCut(inst.server[:], value, &inst.Cut)
	case equalFoldASCII(key, "Version"):
		inst.versionLen = copyCut(inst.version[:], value, &inst.Cut)
	case equalFoldASCII(key, "IsClustered"):
		inst.Clustered = equalFoldASCII(value, "Yes")
	case equalFoldASCII(key, "tcp"):
		if inst.TCPPort != 0 || inst.BadPort {
			return // the first tcp value counts
		}
		port, ok := parsePort(value)
		if !ok {
			inst.BadPort = true
			r.Malformed++
			return
		}
		inst.TCPPort = port
	}
}

// cutSemicolon splits b at its first ';'.
func cutSemicolon(b []byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == ';' {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// copyCut copies src into dst, setting *cut when it does not fit.
func copyCut(dst, src []byte, cut *bool) uint8 {
	if len(src) > len(dst) {
		*cut = true
	}
	return uint8(copy(dst, src))
}

// parsePort reads a decimal port, 1-65535, with no sign, space or
// leading zero.
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > maxPortDigits || b[0] == '0' {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

// equalFoldASCII reports whether b is s, ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c, d := b[i], s[i]
		if c|0x20 != d|0x20 || (c|0x20) < 'a' || (c|0x20) > 'z' {
			if c != d {
				return false
			}
		}
	}
	return true
}
