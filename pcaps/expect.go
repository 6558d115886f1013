package pcaps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"time"
)

// Shape is what a flow's packets do on the wire.
type Shape uint8

const (
	ShapeInvalid    Shape = iota
	TCPSession            // handshake, data, FIN both ways
	TCPSessionReset       // handshake, data, client RST
	TCPSessionOpen        // handshake, data, never closed
	TCPNoAnswer           // SYN and retransmissions, nothing back
	TCPRefused            // SYN, RST/ACK
	TCPICMP               // SYN, ICMP destination unreachable
	TCPMidBoth            // mid-stream ACK segments both ways
	TCPMidClient          // mid-stream, client to server only
	TCPMidServer          // mid-stream, server to client only
	UDPExchange           // requests and replies
	UDPReplyFirst         // a reply first, then request and reply
	UDPOneWay             // datagrams to the server only
	UDPNoAnswer           // requests, nothing back
	UDPICMP               // a datagram, ICMP destination unreachable
)

// Policy is what the site's config and the matrix make of a flow's
// addresses and ports, before its packets say whether it worked.
type Policy uint8

const (
	ByRule          Policy = iota // an enabled rule admits it: the shape decides allowed or blocked
	FeatureDisabled               // a rule admits it but its feature is off
	Unauthorized                  // documented server port, client not admitted
	NoRule                        // both ends known, nothing mentions the port
	Ignored                       // unrelated to Threat Prevention
	// NotProduct: both ends known, no rule admits it, and it is the
	// ordinary traffic of servers that also run the product (no product
	// port, no product host at either end).
	NotProduct
)

// Flow is one flow of a scenario: its traffic and what tpwatch must
// conclude about it.
type Flow struct {
	Shape  Shape
	Path   Path
	At     time.Duration // offset of the first packet
	Client netip.AddrPort
	Server netip.AddrPort
	Rule   string // the rule id the verdict names, "" for none
	Policy Policy
	// Pending marks a TCPNoAnswer or UDPNoAnswer attempt cut by the end of
	// the capture before its timeout (the generator checks it is so).
	Pending bool
	ICMP    ICMPError // for TCPICMP and UDPICMP
	// Rounds is the number of exchanges, datagrams or segments (1 if 0).
	Rounds int
}

// Expected is one line of a <capture>.expected.ndjson file.
type Expected struct {
	Transport string `json:"transport"`
	SrcIP     string `json:"src_ip"`
	SrcPort   uint16 `json:"src_port"`
	DstIP     string `json:"dst_ip"`
	DstPort   uint16 `json:"dst_port"`
	Rule      string `json:"rule"`
	Verdict   string `json:"verdict"`
	Reason    string `json:"reason"`
	Outcome   string `json:"outcome,omitempty"`
	ConnState string `json:"conn_state"`
	ICMPType  *uint8 `json:"icmp_type,omitempty"`
	ICMPCode  *uint8 `json:"icmp_code,omitempty"`
	ICMPSrc   string `json:"icmp_src,omitempty"`
}

// Attempt timeouts of DESIGN.md's defaults, counted from a flow's first
// packet.
const (
	TCPAttemptTimeout = 30 * time.Second
	UDPAttemptTimeout = 10 * time.Second
	// UDPICMPWait is how long a one-way UDP flow waits for an ICMP error
	// before it is allowed.
	UDPICMPWait = 2 * time.Second
)

func (s Shape) transport() string {
	if s >= UDPExchange {
		return "udp"
	}
	return "tcp"
}

func (s Shape) connState() string {
	switch s {
	case TCPSession, UDPExchange, UDPReplyFirst:
		return "SF"
	case TCPSessionReset:
		return "RSTO"
	case TCPSessionOpen:
		return "S1"
	case TCPRefused:
		return "REJ"
	case TCPMidBoth, TCPMidClient, TCPMidServer:
		return "OTH"
	}
	return "S0" // no answer, ICMP error (not part of the flow), one-way UDP
}

// worked reports whether the shape shows the flow working.
func (s Shape) worked() bool {
	switch s {
	case TCPNoAnswer, TCPRefused, TCPICMP, UDPNoAnswer, UDPICMP:
		return false
	}
	return true
}

// expect returns what tpwatch must report about f.
func (f Flow) expect() Expected {
	e := Expected{
		Transport: f.Shape.transport(),
		SrcIP:     f.Client.Addr().String(), SrcPort: f.Client.Port(),
		DstIP: f.Server.Addr().String(), DstPort: f.Server.Port(),
		Rule: f.Rule, ConnState: f.Shape.connState(),
	}
	switch f.Policy {
	case Ignored:
		e.Verdict = "ignored"
	case NotProduct:
		e.Verdict, e.Reason = "ignored", "not_product"
	case FeatureDisabled:
		e.Verdict, e.Reason = "unexpected", "feature_disabled"
	case Unauthorized:
		e.Verdict, e.Reason = "unexpected", "unauthorized_client"
	case NoRule:
		e.Verdict, e.Reason = "unexpected", "no_rule"
	case ByRule:
		switch {
		case f.Shape.worked():
			e.Verdict = "allowed"
		case f.Pending:
			e.Verdict = "pending"
		default:
			e.Verdict, e.Reason = "blocked", f.failure()
		}
	}
	if e.Verdict == "unexpected" {
		// An unexpected flow says how it went.
		switch {
		case f.Shape.worked():
			e.Outcome = "worked"
		case f.Pending:
			e.Outcome = "unknown"
		default:
			e.Outcome = f.failure()
		}
	}
	if (e.Verdict == "blocked" || e.Verdict == "unexpected") && (f.Shape == TCPICMP || f.Shape == UDPICMP) {
		t, c := f.ICMP.Type, f.ICMP.Code
		e.ICMPType, e.ICMPCode, e.ICMPSrc = &t, &c, f.ICMP.From.String()
	}
	return e
}

// failure is how a flow whose shape fails fails: a blocked flow's reason,
// an unexpected one's outcome.
func (f Flow) failure() string {
	switch f.Shape {
	case TCPRefused:
		return "refused"
	case TCPICMP, UDPICMP:
		return "icmp_unreachable"
	}
	return "no_response"
}

// check returns an error when the flow's definition contradicts itself or
// the capture's end (an attempt meant to be decided must have its timeout
// pass inside the capture; a pending one must not).
func (f Flow) check(last, end time.Duration) error {
	name := fmt.Sprintf("%s %v -> %v", f.Shape.transport(), f.Client, f.Server)
	if f.Shape == ShapeInvalid {
		return fmt.Errorf("%s: no shape", name)
	}
	if (f.Policy == Ignored || f.Policy == NoRule || f.Policy == NotProduct) != (f.Rule == "") {
		return fmt.Errorf("%s: rule %q does not fit its policy outcome", name, f.Rule)
	}
	if f.Client.Addr().Is4() != f.Server.Addr().Is4() {
		return fmt.Errorf("%s: mixed address families", name)
	}
	timeout := TCPAttemptTimeout
	if f.Shape.transport() == "udp" {
		timeout = UDPAttemptTimeout
	}
	switch {
	case f.Pending && f.Shape != TCPNoAnswer && f.Shape != UDPNoAnswer:
		return fmt.Errorf("%s: only an unanswered attempt can be pending", name)
	case f.Pending && end-f.At >= timeout:
		return fmt.Errorf("%s: meant to be pending, but the capture runs %v past its start", name, end-f.At)
	case (f.Shape == TCPNoAnswer || f.Shape == UDPNoAnswer) && !f.Pending && end-f.At <= timeout:
		return fmt.Errorf("%s: meant to time out, but the capture ends %v after its start", name, end-f.At)
	case f.Shape == UDPOneWay && f.Policy == ByRule && end-f.At < UDPICMPWait:
		// A one-way stream is allowed once no ICMP error came back for
		// the ICMP wait after its first datagram: the capture must run
		// that long.
		return fmt.Errorf("%s: one-way stream starts %v before the capture ends, less than the ICMP wait", name, end-f.At)
	case f.Shape == UDPOneWay && f.Policy != ByRule && f.Policy != Ignored && f.Policy != NotProduct:
		return fmt.Errorf("%s: an unexpected one-way stream has no outcome to expect", name)
	}
	return nil
}

// write builds the flow's packets into c and returns its last packet's time.
func (f Flow) write(c *Capture) time.Duration {
	n := f.Rounds
	if n == 0 {
		n = 1
	}
	p, cli, srv, at := f.Path, f.Client, f.Server, f.At
	switch f.Shape {
	case TCPSession:
		return c.TCPSession(at, p, cli, srv, 120, 360)
	case TCPSessionReset:
		return c.TCPSessionReset(at, p, cli, srv, 120, 360)
	case TCPSessionOpen:
		return c.TCPSessionOpen(at, p, cli, srv, 10*time.Second, n)
	case TCPNoAnswer:
		if f.Pending {
			return c.TCPNoAnswer(at, p, cli, srv, synRetries[:3])
		}
		return c.TCPNoAnswer(at, p, cli, srv, synRetries)
	case TCPRefused:
		return c.TCPRefused(at, p, cli, srv)
	case TCPICMP:
		return c.TCPICMPBlocked(at, p, cli, srv, f.ICMP)
	case TCPMidBoth:
		return c.TCPMidstream(at, p, cli, srv, BothWays, n)
	case TCPMidClient:
		return c.TCPMidstream(at, p, cli, srv, ClientToServer, n)
	case TCPMidServer:
		return c.TCPMidstream(at, p, cli, srv, ServerToClient, n)
	case UDPExchange:
		return c.UDPExchange(at, p, cli, srv, n)
	case UDPReplyFirst:
		return c.UDPReplyFirst(at, p, cli, srv)
	case UDPOneWay:
		return c.UDPOneWay(at, p, cli, srv, n, 500*time.Millisecond)
	case UDPNoAnswer:
		if f.Pending {
			return c.UDPNoAnswer(at, p, cli, srv, []time.Duration{0, time.Second})
		}
		return c.UDPNoAnswer(at, p, cli, srv, []time.Duration{0, time.Second, 3 * time.Second})
	case UDPICMP:
		return c.UDPICMPBlocked(at, p, cli, srv, f.ICMP)
	}
	c.fail(fmt.Errorf("flow %v -> %v: shape %d unknown", cli, srv, f.Shape))
	return at
}

// sortExpected orders lines by transport, client address and port, server
// address and port; addresses compare numerically, IPv4 first.
func sortExpected(es []Expected) {
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Transport != b.Transport {
			return a.Transport < b.Transport
		}
		if c := netip.MustParseAddr(a.SrcIP).Compare(netip.MustParseAddr(b.SrcIP)); c != 0 {
			return c < 0
		}
		if a.SrcPort != b.SrcPort {
			return a.SrcPort < b.SrcPort
		}
		if c := netip.MustParseAddr(a.DstIP).Compare(netip.MustParseAddr(b.DstIP)); c != 0 {
			return c < 0
		}
		return a.DstPort < b.DstPort
	})
}

// encodeExpected writes the lines as NDJSON.
func encodeExpected(es []Expected) ([]byte, error) {
	var buf bytes.Buffer
	for _, e := range es {
		line, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode expected flow: %w", err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}
