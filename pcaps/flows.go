package pcaps

import (
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Timing of the generated conversations: a LAN round trip, the time a
// server takes to answer, and the gap between packets sent back to back.
const (
	rtt        = 400 * time.Microsecond
	think      = 2 * time.Millisecond
	backToBack = 15 * time.Microsecond
)

// synRetries are the offsets of a SYN and its retransmissions when nothing
// answers (Linux: 1, 2, 4, 8 and 16 s backoff), spanning 31 s: longer than
// the 30 s TCP attempt timeout.
var synRetries = []time.Duration{0, 1 * time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second, 31 * time.Second}

// TCP flag sets used by the conversations.
const (
	fSYN = 1 << iota
	fACK
	fPSH
	fFIN
	fRST
)

// tcpConn writes one TCP conversation, keeping both sides' sequence numbers.
type tcpConn struct {
	c          *Capture
	path       Path
	cli, srv   netip.AddrPort
	cseq, sseq uint32
}

func (c *Capture) tcp(p Path, cli, srv netip.AddrPort) *tcpConn {
	c.flows++
	n := uint32(c.flows)
	return &tcpConn{c: c, path: p, cli: cli, srv: srv, cseq: 0x10000000 + n*0x01010101, sseq: 0x80000000 + n*0x00f0f0f1}
}

// send writes one segment; fromClient says which side sends it. Sequence
// numbers advance by the payload and by SYN and FIN.
func (k *tcpConn) send(at time.Duration, fromClient bool, flags int, payload int) {
	src, dst := k.cli, k.srv
	seq, ack := &k.cseq, &k.sseq
	ttl := uint8(128)
	if !fromClient {
		src, dst = k.srv, k.cli
		seq, ack = &k.sseq, &k.cseq
		ttl = 64
	}
	ip := k.c.ipLayer(src.Addr(), dst.Addr(), layers.IPProtocolTCP, ttl)
	t := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: *seq, Window: 64240,
		SYN: flags&fSYN != 0, ACK: flags&fACK != 0, PSH: flags&fPSH != 0,
		FIN: flags&fFIN != 0, RST: flags&fRST != 0,
	}
	if t.ACK {
		t.Ack = *ack
	}
	if t.RST && !t.ACK {
		t.Window = 0
	}
	if t.SYN {
		mss := []byte{0x05, 0xb4} // 1460
		if src.Addr().Is6() && !src.Addr().Is4In6() {
			mss = []byte{0x05, 0xa0} // 1440
		}
		t.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: mss}}
	}
	if err := t.SetNetworkLayerForChecksum(networkLayer(ip)); err != nil {
		k.c.fail(err)
		return
	}
	data, err := ipPacket(ip, t, gopacket.Payload(payloadBytes(payload)))
	if err != nil {
		k.c.fail(err)
		return
	}
	k.c.emit(at, k.path, src.Addr(), dst.Addr(), data)
	*seq += uint32(payload)
	if t.SYN || t.FIN {
		*seq++
	}
}

// synPacket returns the client's SYN as an IP packet, for ICMP errors to
// quote; it does not advance the conversation.
func (k *tcpConn) synPacket() []byte {
	ip := k.c.ipLayer(k.cli.Addr(), k.srv.Addr(), layers.IPProtocolTCP, 128)
	k.c.ipID-- // not a packet of its own: keep the IP ids of the capture contiguous
	t := &layers.TCP{SrcPort: layers.TCPPort(k.cli.Port()), DstPort: layers.TCPPort(k.srv.Port()), Seq: k.cseq, SYN: true, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}
	if err := t.SetNetworkLayerForChecksum(networkLayer(ip)); err != nil {
		k.c.fail(err)
		return nil
	}
	data, err := ipPacket(ip, t)
	if err != nil {
		k.c.fail(err)
	}
	return data
}

func (c *Capture) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// payloadBytes returns n bytes of printable filler: the captures carry no
// real application data.
func payloadBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// handshake writes SYN, SYN-ACK, ACK and returns the time of the ACK.
func (k *tcpConn) handshake(at time.Duration) time.Duration {
	k.send(at, true, fSYN, 0)
	k.send(at+rtt/2, false, fSYN|fACK, 0)
	k.send(at+rtt, true, fACK, 0)
	return at + rtt
}

// exchange writes a request, the server's answer and the client's ACK.
func (k *tcpConn) exchange(at time.Duration, req, resp int) time.Duration {
	k.send(at, true, fPSH|fACK, req)
	k.send(at+think, false, fPSH|fACK, resp)
	k.send(at+think+rtt/2, true, fACK, 0)
	return at + think + rtt/2
}

// close writes the client's FIN, the server's FIN and the last ACK.
func (k *tcpConn) close(at time.Duration) time.Duration {
	k.send(at, true, fFIN|fACK, 0)
	k.send(at+rtt/2, false, fFIN|fACK, 0)
	k.send(at+rtt, true, fACK, 0)
	return at + rtt
}

// TCPSession writes a whole working connection: handshake, one request and
// answer, FIN close (Zeek SF).
func (c *Capture) TCPSession(at time.Duration, p Path, cli, srv netip.AddrPort, req, resp int) time.Duration {
	k := c.tcp(p, cli, srv)
	t := k.handshake(at)
	t = k.exchange(t+backToBack, req, resp)
	return k.close(t + 10*time.Millisecond)
}

// TCPSessionReset writes a connection that worked and that the client then
// aborts with a RST (Zeek RSTO), as Windows applications often do.
func (c *Capture) TCPSessionReset(at time.Duration, p Path, cli, srv netip.AddrPort, req, resp int) time.Duration {
	k := c.tcp(p, cli, srv)
	t := k.handshake(at)
	t = k.exchange(t+backToBack, req, resp)
	k.send(t+5*time.Millisecond, true, fRST|fACK, 0)
	return t + 5*time.Millisecond
}

// TCPSessionOpen writes a connection that is established and exchanges
// data rounds times, interval apart, and is never closed (Zeek S1).
func (c *Capture) TCPSessionOpen(at time.Duration, p Path, cli, srv netip.AddrPort, interval time.Duration, rounds int) time.Duration {
	k := c.tcp(p, cli, srv)
	t := k.handshake(at)
	for i := 1; i <= rounds; i++ {
		t = k.exchange(at+time.Duration(i)*interval, 48, 96)
	}
	return t
}

// TCPNoAnswer writes a SYN and its retransmissions at the given offsets from
// at, with nothing coming back (Zeek S0).
func (c *Capture) TCPNoAnswer(at time.Duration, p Path, cli, srv netip.AddrPort, retries []time.Duration) time.Duration {
	k := c.tcp(p, cli, srv)
	for _, r := range retries {
		k.send(at+r, true, fSYN, 0)
		k.cseq-- // a retransmission carries the same sequence number
	}
	return at + retries[len(retries)-1]
}

// TCPRefused writes a SYN answered by RST/ACK (Zeek REJ).
func (c *Capture) TCPRefused(at time.Duration, p Path, cli, srv netip.AddrPort) time.Duration {
	k := c.tcp(p, cli, srv)
	k.send(at, true, fSYN, 0)
	k.sseq = 0
	k.send(at+rtt/2, false, fRST|fACK, 0)
	return at + rtt/2
}

// ICMPError describes an ICMP or ICMPv6 destination unreachable: who sends
// it, its type and code, and how many bytes of the offending packet it
// quotes (0: all of it, as Linux and most routers do; 28 is the RFC 792
// minimum of an IPv4 header and 8 transport bytes).
type ICMPError struct {
	From       netip.Addr
	Type, Code uint8
	QuoteLen   int
}

// Common ICMP errors of firewalls and closed ports.
const (
	ICMPv4Unreachable       = 3
	ICMPv4CodePort          = 3
	ICMPv4CodeAdminProhib   = 13
	ICMPv6Unreachable       = 1
	ICMPv6CodeAdminProhib   = 1
	ICMPv6CodePortUnreach   = 4
	icmpDelay               = 300 * time.Microsecond
	icmpv4MinimumQuoteBytes = 28
)

// TCPICMPBlocked writes a SYN answered by an ICMP error quoting it (Zeek S0:
// ICMP is not part of the connection).
func (c *Capture) TCPICMPBlocked(at time.Duration, p Path, cli, srv netip.AddrPort, e ICMPError) time.Duration {
	k := c.tcp(p, cli, srv)
	quoted := k.synPacket()
	k.send(at, true, fSYN, 0)
	c.icmpError(at+icmpDelay, p, cli.Addr(), e, quoted)
	return at + icmpDelay
}

// icmpError writes an ICMP(v6) error to dst quoting the packet quoted.
func (c *Capture) icmpError(at time.Duration, p Path, dst netip.Addr, e ICMPError, quoted []byte) {
	if e.QuoteLen > 0 && e.QuoteLen < len(quoted) {
		quoted = quoted[:e.QuoteLen]
	}
	var data []byte
	var err error
	if dst.Is4() {
		ip := c.ipLayer(e.From, dst, layers.IPProtocolICMPv4, 255)
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(e.Type, e.Code)}
		data, err = ipPacket(ip, ic, gopacket.Payload(quoted))
	} else {
		ip := c.ipLayer(e.From, dst, layers.IPProtocolICMPv6, 64)
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(e.Type, e.Code)}
		if err = ic.SetNetworkLayerForChecksum(networkLayer(ip)); err == nil {
			// Four unused bytes precede the quoted packet (RFC 4443 3.1).
			data, err = ipPacket(ip, ic, gopacket.Payload(append(make([]byte, 4), quoted...)))
		}
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.emit(at, p, e.From, dst, data)
}

// Direction says which halves of a conversation a capture sees.
type Direction uint8

const (
	BothWays Direction = iota
	ClientToServer
	ServerToClient
)

// TCPMidstream writes n ACK-carrying data segments of an established
// connection whose start the capture missed (Zeek OTH).
func (c *Capture) TCPMidstream(at time.Duration, p Path, cli, srv netip.AddrPort, d Direction, n int) time.Duration {
	k := c.tcp(p, cli, srv)
	t := at
	for i := 0; i < n; i++ {
		if d != ServerToClient {
			k.send(t, true, fPSH|fACK, 64)
		} else {
			k.cseq += 64 // the client's segment, unseen
		}
		if d != ClientToServer {
			k.send(t+think, false, fPSH|fACK, 160)
		} else {
			k.sseq += 160
		}
		t += think + 50*time.Millisecond
	}
	return t
}

// udp writes one datagram.
func (c *Capture) udp(at time.Duration, p Path, src, dst netip.AddrPort, payload int) []byte {
	ttl := uint8(128)
	ip := c.ipLayer(src.Addr(), dst.Addr(), layers.IPProtocolUDP, ttl)
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	if err := u.SetNetworkLayerForChecksum(networkLayer(ip)); err != nil {
		c.fail(err)
		return nil
	}
	// Zeros, not filler text: DNS, NTP and NetBIOS dissectors read an
	// all-zero message as a valid, empty one.
	data, err := ipPacket(ip, u, gopacket.Payload(make([]byte, payload)))
	if err != nil {
		c.fail(err)
		return nil
	}
	c.emit(at, p, src.Addr(), dst.Addr(), data)
	return data
}

// UDPExchange writes n request/reply pairs, 1 s apart (Zeek SF).
func (c *Capture) UDPExchange(at time.Duration, p Path, cli, srv netip.AddrPort, n int) time.Duration {
	t := at
	for i := 0; i < n; i++ {
		c.udp(t, p, cli, srv, 48)
		c.udp(t+rtt, p, srv, cli, 96)
		t += time.Second
	}
	return t - time.Second + rtt
}

// UDPReplyFirst writes a request/reply conversation whose first packet on
// the capture is a reply (the capture started after the first request).
func (c *Capture) UDPReplyFirst(at time.Duration, p Path, cli, srv netip.AddrPort) time.Duration {
	c.udp(at, p, srv, cli, 96)
	return c.UDPExchange(at+time.Second, p, cli, srv, 1)
}

// UDPOneWay writes n datagrams from client to server, interval apart, with
// nothing back (Zeek S0), as one-way streams do.
func (c *Capture) UDPOneWay(at time.Duration, p Path, cli, srv netip.AddrPort, n int, interval time.Duration) time.Duration {
	t := at
	for i := 0; i < n; i++ {
		c.udp(t, p, cli, srv, 120)
		t += interval
	}
	return t - interval
}

// UDPNoAnswer writes a request and its retries at the given offsets, with
// nothing back (Zeek S0).
func (c *Capture) UDPNoAnswer(at time.Duration, p Path, cli, srv netip.AddrPort, retries []time.Duration) time.Duration {
	for _, r := range retries {
		c.udp(at+r, p, cli, srv, 48)
	}
	return at + retries[len(retries)-1]
}

// UDPICMPBlocked writes a datagram answered by an ICMP error quoting it.
func (c *Capture) UDPICMPBlocked(at time.Duration, p Path, cli, srv netip.AddrPort, e ICMPError) time.Duration {
	quoted := c.udp(at, p, cli, srv, 48)
	c.icmpError(at+icmpDelay, p, cli.Addr(), e, quoted)
	return at + icmpDelay
}
