package classifier

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// Payloads of the tests: what a client sends first.
var (
	// A TLS 1.2 ClientHello with no extension: what a gRPC-over-TLS
	// client would open 3741 with (ALPN aside).
	clientHello = func() []byte {
		body := []byte{0x03, 0x03}
		body = append(body, make([]byte, 32)...) // random
		body = append(body, 0)                   // session id
		body = append(body, 0, 2, 0x13, 0x01)    // one cipher suite
		body = append(body, 1, 0)                // no compression
		hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
		return append([]byte{0x16, 0x03, 0x01, byte(len(hs) >> 8), byte(len(hs))}, hs...)
	}()
	httpRequest = []byte("GET / HTTP/1.1\r\nHost: em\r\n\r\n")
)

// feed follows packets, each with its payload when it has one.
func feed(tab *Table, pkts []capture.Packet, payloads map[int][]byte) {
	for i := range pkts {
		tab.payload = payloads[i]
		tab.Process(&pkts[i])
		tab.payload = nil
	}
}

func inspectingOptions() Options {
	o := testOptions()
	o.Inspect = NewInspectPorts([]policy.Rule{*newFakeMatcher().Rule(ruleAgentToEM)})
	return o
}

// TestProtocolOnADocumentedPort: on 3741, whose protocol dissect knows
// (TLS, HTTP/2 or gRPC), a flow that worked waits for its first payload:
// a ClientHello makes it allowed, HTTP/1 unexpected/protocol_mismatch, an
// unreadable payload allowed; with none it is allowed once quiet for
// AppWait, or when it ends. Without inspection it is allowed at once.
func TestProtocolOnADocumentedPort(t *testing.T) {
	hs := handshake(agentAddr, 40000, emAddr, 3741, 0)
	withData := func(payload []byte) ([]capture.Packet, map[int][]byte) {
		pkts := append(slices.Clone(hs), tcpPkt(3*ms, agentAddr, 40000, emAddr, 3741, pshack, uint32(len(payload))))
		return pkts, map[int][]byte{len(hs): payload}
	}
	for _, tt := range []struct {
		name     string
		opts     Options
		pkts     []capture.Packet
		payloads map[int][]byte
		advance  time.Duration // then Advance to this time; 0: Flush at 1h
		want     string        // the decided line
		app      dissect.App
	}{{
		name: "tls", opts: inspectingOptions(),
		want: `decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "ShAD" out=3/300 in=1/100`, app: dissect.AppTLS,
	}, {
		name: "http/1 on a gRPC port", opts: inspectingOptions(),
		want: `decided tcp 10.0.0.2:40000>10.0.0.1:3741 unexpected/protocol_mismatch outcome=worked rule=0 S1 "ShAD" out=3/300 in=1/100`, app: dissect.AppHTTP,
	}, {
		name: "unreadable bytes", opts: inspectingOptions(),
		want: `decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "ShAD" out=3/300 in=1/100`, app: dissect.AppUnknown,
	}, {
		name: "no payload: quiet for AppWait", opts: inspectingOptions(), advance: 8 * time.Second,
		want: `decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "ShA" out=2/200 in=1/100`,
	}, {
		name: "no payload: the flow ends first", opts: inspectingOptions(),
		want: `decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "ShA" out=2/200 in=1/100`,
	}, {
		name: "headers only", opts: testOptions(),
		want: `decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "Sh" out=1/100 in=1/100`, // at the SYN-ACK
	}} {
		t.Run(tt.name, func(t *testing.T) {
			pkts, payloads := hs, map[int][]byte(nil)
			switch tt.name {
			case "tls", "headers only":
				pkts, payloads = withData(clientHello)
			case "http/1 on a gRPC port":
				pkts, payloads = withData(httpRequest)
			case "unreadable bytes":
				pkts, payloads = withData([]byte("hello, this is not a known protocol at all"))
			}
			rec := newRecorder(t)
			tab := NewTable(tt.opts, newFakeMatcher(), rec)
			feed(tab, pkts, payloads)
			if tt.name != "headers only" && len(rec.lines) != 0 && strings.Contains(tt.name, "no payload") {
				t.Fatalf("decided before AppWait: %v", rec.lines)
			}
			if tt.advance > 0 {
				tab.Advance(at(tt.advance))
				if len(rec.lines) == 0 {
					t.Fatalf("not decided after %v of quiet", tt.advance)
				}
			}
			tab.Flush(at(time.Hour))
			if len(rec.lines) == 0 || rec.lines[0] != tt.want {
				t.Fatalf("got %v\nwant %s", rec.lines, tt.want)
			}
			if got := rec.finals[0].App; got != tt.app {
				t.Errorf("app %v, want %v", got, tt.app)
			}
		})
	}
}

// fakeRoles adds a Threat Manager, a domain controller and a SQL Server to
// the fake inventory.
const (
	tmAddr  = "10.0.0.5"
	dcAddr  = "10.0.0.6"
	sqlAddr = "10.0.0.7"
)

func announcingMatcher() *fakeMatcher {
	m := newFakeMatcher()
	m.roles[addr(tmAddr)] = policy.RoleSet(0).With(policy.ThreatManager)
	m.roles[addr(dcAddr)] = policy.RoleSet(0).With(policy.DomainController)
	m.roles[addr(sqlAddr)] = policy.RoleSet(0).With(policy.SQLServer)
	return m
}

// TestAnnouncedPorts: a port the domain controller's endpoint mapper
// announced admits the Threat Manager by the dynamic RPC rule, whatever
// its number; an attempt to it with no answer is that rule's
// blocked/no_response, named with the interface; a port nobody announced
// is no_rule, and an announcement older than the TTL explains nothing.
func TestAnnouncedPorts(t *testing.T) {
	learned := at(-time.Minute)
	for _, tt := range []struct {
		name string
		ann  *Announcement
		pkts []capture.Packet
		want string
		via  Via
	}{{
		name: "announced, answered",
		ann:  &Announcement{Via: ViaEPM, Interface: dissect.InterfaceOther, At: learned},
		pkts: handshake(tmAddr, 41000, dcAddr, 5003, 0),
		want: `decided tcp 10.0.0.5:41000>10.0.0.6:5003 allowed rule=5 S1 "Sh" out=1/100 in=1/100`, via: ViaEPM,
	}, {
		name: "announced, dropped",
		ann:  &Announcement{Via: ViaEPM, At: learned},
		pkts: []capture.Packet{tcpPkt(0, tmAddr, 41000, dcAddr, 5003, syn, 0), tcpPkt(time.Second, tmAddr, 41000, dcAddr, 5003, syn, 0)},
		want: `decided tcp 10.0.0.5:41000>10.0.0.6:5003 blocked/no_response rule=5 S0 "S" out=2/200 in=0/0`, via: ViaEPM,
	}, {
		name: "nothing announced",
		pkts: handshake(tmAddr, 41000, dcAddr, 5003, 0),
		want: `decided tcp 10.0.0.5:41000>10.0.0.6:5003 unexpected/no_rule outcome=worked rule=-1 S1 "Sh" out=1/100 in=1/100`,
	}, {
		name: "announced too long ago",
		ann:  &Announcement{Via: ViaEPM, At: at(-2 * time.Hour)},
		pkts: handshake(tmAddr, 41000, dcAddr, 5003, 0),
		want: `decided tcp 10.0.0.5:41000>10.0.0.6:5003 unexpected/no_rule outcome=worked rule=-1 S1 "Sh" out=1/100 in=1/100`,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			opts := inspectingOptions()
			opts.Announcements = NewAnnouncements(0, time.Hour)
			if tt.ann != nil {
				opts.Announcements.learn(addr(dcAddr), capture.ProtoTCP, 5003, *tt.ann)
			}
			rec := newRecorder(t)
			tab := NewTable(opts, announcingMatcher(), rec)
			feed(tab, tt.pkts, nil)
			tab.Flush(at(time.Hour))
			if len(rec.lines) == 0 || rec.lines[0] != tt.want {
				t.Fatalf("got %v\nwant %s", rec.lines, tt.want)
			}
			r := rec.finals[0]
			if r.Via != tt.via {
				t.Errorf("via %v, want %v", r.Via, tt.via)
			}
			if tt.via == ViaEPM && r.AnnouncedAt != learned {
				t.Errorf("announced at %d, want %d", r.AnnouncedAt, learned)
			}
		})
	}
}

// TestRPCStrict: a flow a dynamic RPC rule admits by its range alone says
// so (via range); under RPCStrict it is unexpected/rpc_unannounced.
func TestRPCStrict(t *testing.T) {
	for _, strict := range []bool{false, true} {
		opts := inspectingOptions()
		opts.RPCStrict = strict
		rec := newRecorder(t)
		tab := NewTable(opts, announcingMatcher(), rec)
		feed(tab, handshake(emAddr, 42000, agentAddr, 50000, 0), nil)
		tab.Flush(at(time.Hour))
		r := rec.finals[0]
		want := Allowed
		if strict {
			want = Unexpected
		}
		if r.Verdict != want || r.Via != ViaRange || strict && r.Reason != RPCUnannounced {
			t.Errorf("strict %v: %s via %v, want %v via range", strict, describe(&r), r.Via, want)
		}
	}
}

// TestSQLBrowserAnnounces: SQL Server Browser's answer names a named
// instance's port; the Enterprise Manager's connection to it is then
// em-sql-tds's, and says the instance.
func TestSQLBrowserAnnounces(t *testing.T) {
	data := "ServerName;SQL01;InstanceName;TP;IsClustered;No;Version;16.0.1000.6;tcp;50123;;"
	resp := append([]byte{0x05, byte(len(data)), byte(len(data) >> 8)}, data...)
	pkts := []capture.Packet{
		udpPkt(0, emAddr, 53000, sqlAddr, 1434, 3),
		udpPkt(time.Millisecond, sqlAddr, 1434, emAddr, 53000, uint32(len(resp))),
	}
	pkts = append(pkts, handshake(emAddr, 53001, sqlAddr, 50123, 2*time.Millisecond)...)
	rec := newRecorder(t)
	tab := NewTable(inspectingOptions(), announcingMatcher(), rec)
	feed(tab, pkts, map[int][]byte{0: {0x04, 'T', 'P'}, 1: resp})
	tab.Flush(at(time.Hour))
	var found bool
	for _, r := range rec.finals {
		if r.ServerPort != 50123 {
			continue
		}
		found = true
		if r.Verdict != Allowed || r.Rule != fakeSQLRule || r.Via != ViaSSRP || r.InstanceName() != "TP" {
			t.Errorf("%s via %v instance %q, want allowed rule %d via ssrp instance TP", describe(&r), r.Via, r.InstanceName(), fakeSQLRule)
		}
	}
	if !found {
		t.Fatalf("no flow to 50123: %v", rec.lines)
	}
	if s := tab.Stats(); s.SSRPAnswers != 1 || s.AnnouncedPorts != 1 {
		t.Errorf("stats: %d SQL Browser answers, %d ports announced; want 1 and 1", s.SSRPAnswers, s.AnnouncedPorts)
	}
}

// TestAnnouncementsAreBounded: a full table sweeps out the expired ports,
// then drops new ones and counts them.
func TestAnnouncementsAreBounded(t *testing.T) {
	a := NewAnnouncements(2, time.Minute)
	srv := addr(dcAddr)
	a.learn(srv, capture.ProtoTCP, 1, Announcement{Via: ViaEPM, At: at(0)})
	a.learn(srv, capture.ProtoTCP, 2, Announcement{Via: ViaEPM, At: at(0)})
	a.learn(srv, capture.ProtoTCP, 3, Announcement{Via: ViaEPM, At: at(time.Second)})
	if a.Len() != 2 || a.Dropped() != 1 {
		t.Fatalf("held %d, dropped %d; want 2 and 1", a.Len(), a.Dropped())
	}
	a.learn(srv, capture.ProtoTCP, 3, Announcement{Via: ViaEPM, At: at(2 * time.Minute)})
	if _, ok := a.lookup(srv, capture.ProtoTCP, 3, at(2*time.Minute)); !ok || a.Len() != 1 {
		t.Errorf("after the first two expired: port 3 held %v, %d held; want true, 1", ok, a.Len())
	}
	if _, ok := a.lookup(srv, capture.ProtoUDP, 3, at(2*time.Minute)); ok {
		t.Error("a TCP announcement explains UDP")
	}
}

// TestLoaderCarriesFirstPayloads: through a Loader, crossing or not, the
// first payloads of a direction on an inspected port reach the table (the
// flow's protocol is named), later ones and those of other ports are not
// copied, and every payload of the endpoint mapper is. The same holds for
// the frames mirrored to a sensor in VXLAN: the payload carried is the
// inner packet's.
func TestLoaderCarriesFirstPayloads(t *testing.T) {
	for _, tunnel := range []bool{false, true} {
		loaderCarriesFirstPayloads(t, tunnel)
	}
}

// inVXLAN wraps an Ethernet frame in VXLAN (VNI 1) from a switch to a
// sensor, as a mirror session sends it.
func inVXLAN(f []byte) []byte {
	out := make([]byte, 14+20+8+8, 14+20+8+8+len(f))
	binary.BigEndian.PutUint16(out[12:], 0x0800)
	ip := out[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, capture.ProtoUDP
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+8+len(f)))
	copy(ip[12:20], []byte{198, 51, 100, 1, 198, 51, 100, 2})
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], 50000)
	binary.BigEndian.PutUint16(udp[2:], 4789)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+8+len(f)))
	udp[8], udp[14] = 0x08, 1
	return append(out, f...)
}

func loaderCarriesFirstPayloads(t *testing.T, tunnel bool) {
	frame := tcpFrame
	long := bytes.Repeat([]byte("L"), settleLen)
	frames := [][]byte{
		frame(agentAddr, emAddr, 40000, 3741, syn, nil),
		frame(emAddr, agentAddr, 3741, 40000, syn|ack, nil),
		frame(agentAddr, emAddr, 40000, 3741, ack, nil),
		frame(agentAddr, emAddr, 40000, 3741, pshack, clientHello),
		frame(agentAddr, emAddr, 40000, 3741, pshack, httpRequest), // third: not carried
		frame(agentAddr, emAddr, 40000, 3741, pshack, httpRequest),
		frame(agentAddr, emAddr, 40001, 4444, pshack, httpRequest), // not inspected
		frame(emAddr, agentAddr, 40002, 135, pshack, []byte("x")),
		frame(emAddr, agentAddr, 40002, 135, pshack, []byte("y")),
		frame(emAddr, agentAddr, 40002, 135, pshack, []byte("z")),
		vlan(frame(agentAddr, emAddr, 40003, 3741, pshack, clientHello)), // the general path
		frame(agentAddr, emAddr, 40004, 3741, pshack, long),              // settles its direction
		frame(agentAddr, emAddr, 40004, 3741, pshack, []byte("M")),
	}
	if tunnel {
		for i := range frames {
			frames[i] = inVXLAN(frames[i])
		}
	}
	for _, crossing := range []bool{true, false} {
		rec := newRecorder(t)
		tab := NewTable(inspectingOptions(), newFakeMatcher(), rec)
		ld := tab.NewLoader(crossing)
		b := ld.NewBatch()
		ld.Start(b)
		for i, f := range frames {
			r := capture.Record{TS: at(time.Duration(i) * ms), WireLen: uint32(len(f)), Link: capture.LinkEthernet, Data: f}
			if !ld.AddFrame(&r) {
				p := ld.Packet()
				p.TS, p.WireLen = r.TS, r.WireLen
				if st := capture.Decode(r.Link, r.Data, p); st != capture.StatusOK || (p.Tunnels != 0) != tunnel {
					t.Fatalf("frame %d: %v, %d tunnels", i, st, p.Tunnels)
				}
				ld.Add(r.Data)
			}
		}
		batch := ld.Finish()
		got := carried(batch)
		// The ClientHello and the first HTTP request (the direction's
		// first two; slim when crossing), then the three payloads to 135
		// (whole: their reader needs sequence numbers), then the
		// ClientHello of a VLAN-tagged frame (decoded the general way),
		// then a first payload long enough to be its direction's only.
		// A batch that crosses to another goroutine carries what the
		// reading side made of a first payload, not the payload.
		want := []string{"\x16", "G", "x", "y", "z", "\x16", "L"}
		if crossing {
			want = []string{"=tls", "=http", "x", "y", "z", "=tls", "=unknown"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("vxlan=%v crossing=%v: carried %q, want %q", tunnel, crossing, got, want)
		}
		tab.ProcessBatch(batch)
		tab.Flush(at(time.Hour))
		apps := map[uint16]dissect.App{}
		for _, r := range rec.finals {
			if r.ServerPort == 3741 {
				apps[r.ClientPort] = r.App
			}
		}
		wantApps := map[uint16]dissect.App{40000: dissect.AppTLS, 40003: dissect.AppTLS, 40004: dissect.AppUnknown}
		if !maps.Equal(apps, wantApps) {
			t.Errorf("vxlan=%v crossing=%v: apps of the 3741 flows by client port %v, want %v", tunnel, crossing, apps, wantApps)
		}
	}
}

// TestSetTimeoutsKeepsTheOtherOptions: a reload's new timeouts leave the
// vantage and the inspection as the table was made (a reload once dropped
// them, and every flow after it was in transit).
func TestSetTimeoutsKeepsTheOtherOptions(t *testing.T) {
	opts := inspectingOptions()
	opts.Vantage = NewVantagePoint(VantageClient, true)
	opts.RPCStrict = true
	tab := NewTable(opts, newFakeMatcher(), nil)
	to := policy.DefaultTimeouts()
	to.TCPAttempt = 7 * time.Second
	tab.SetTimeouts(to)
	if tab.opts.Vantage != opts.Vantage || tab.opts.Inspect != opts.Inspect || !tab.opts.RPCStrict || tab.opts.AppWait != defaultAppWait {
		t.Errorf("after SetTimeouts: vantage %p inspect %p strict %v app wait %v; want them kept", tab.opts.Vantage, tab.opts.Inspect, tab.opts.RPCStrict, tab.opts.AppWait)
	}
	if tab.opts.AttemptTimeout != 7*time.Second {
		t.Errorf("attempt timeout %v, want 7s", tab.opts.AttemptTimeout)
	}
}

// carried describes, in packet order, what batch b carries for the
// table to inspect: a whole packet's payload by its first byte, a slim
// packet's identification as "=" and the protocol it named.
func carried(b *Batch) []string {
	var out []string
	if !b.crossing {
		for k := range b.wholes {
			if p := b.payloadOf(k); p != nil {
				out = append(out, string(p[:1]))
			}
		}
		return out
	}
	w := 0
	for i := range b.n {
		s := &b.slim[i]
		switch {
		case s.Whole:
			if p := b.payloadOf(w); p != nil {
				out = append(out, string(p[:1]))
			}
			w++
		case s.Ident != 0:
			app, _, _ := s.Ident.unpack()
			out = append(out, "="+app.String())
		}
	}
	return out
}

// vlan returns Ethernet frame f with an 802.1Q tag (VLAN 7) inserted.
func vlan(f []byte) []byte {
	out := append([]byte{}, f[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 0x07)
	return append(out, f[12:]...)
}

// tcpFrame returns an Ethernet frame of an IPv4 TCP segment.
func tcpFrame(src, dst string, sport, dport uint16, flags uint8, payload []byte) []byte {
	f := make([]byte, 14+20+20, 14+20+20+len(payload))
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, capture.ProtoTCP
	binary.BigEndian.PutUint16(ip[2:], uint16(40+len(payload)))
	s, d := addr(src), addr(dst)
	copy(ip[12:16], s[12:])
	copy(ip[16:20], d[12:])
	tp := ip[20:]
	binary.BigEndian.PutUint16(tp[0:], sport)
	binary.BigEndian.PutUint16(tp[2:], dport)
	tp[12], tp[13] = 5<<4, flags
	return append(f, payload...)
}

// TestLoaderCarriesEveryLearnerPayload fills batches with endpoint mapper
// payloads of the largest size: the loader says a batch is full before its
// payload room runs out, so none is left behind.
func TestLoaderCarriesEveryLearnerPayload(t *testing.T) {
	const flows = 300
	big := make([]byte, maxCarry+500)
	tab := NewTable(inspectingOptions(), newFakeMatcher(), newRecorder(t))
	ld := tab.NewLoader(true)
	b := ld.NewBatch()
	ld.Start(b)
	n, batches := 0, 1
	for i := range flows {
		if ld.Full() {
			n += len(carried(ld.Finish()))
			ld.Start(b)
			batches++
		}
		f := tcpFrame(agentAddr, emAddr, uint16(40000+i), portEPM, pshack, big)
		r := capture.Record{TS: at(time.Duration(i) * ms), WireLen: uint32(len(f)), Link: capture.LinkEthernet, Data: f}
		if !ld.AddFrame(&r) {
			p := ld.Packet()
			p.TS, p.WireLen = r.TS, r.WireLen
			if st := capture.Decode(r.Link, r.Data, p); st != capture.StatusOK {
				t.Fatalf("frame %d: %v", i, st)
			}
			ld.Add(r.Data)
		}
	}
	n += len(carried(ld.Finish()))
	if n != flows {
		t.Errorf("carried %d payloads of %d", n, flows)
	}
	if batches < flows*maxCarry/carryArena {
		t.Errorf("%d batches for %d payloads of %d bytes: the arena of %d overflowed", batches, flows, maxCarry, carryArena)
	}
}

// TestIdentWordRoundTrip: every application protocol, ALPN set and
// NeedMore survive the 16 bits a slim packet carries them in.
func TestIdentWordRoundTrip(t *testing.T) {
	for a := dissect.AppNone; a.String() != "invalid"; a++ {
		if a > identAppMask {
			t.Fatalf("app %v (%d) does not fit identWord's %d bits", a, a, 5)
		}
		for _, needMore := range []bool{false, true} {
			for _, alpn := range []dissect.ALPNSet{0, 1, 0x81, 0xff} {
				var id dissect.Identification
				id.App, id.NeedMore, id.TLS.ALPN = a, needMore, alpn
				w := packIdent(&id)
				if w == 0 {
					t.Fatalf("%v packs to 0, which means none", a)
				}
				if gotApp, gotALPN, gotMore := w.unpack(); gotApp != a || gotALPN != alpn || gotMore != needMore {
					t.Errorf("%v/%v/%v unpacks to %v/%v/%v", a, alpn, needMore, gotApp, gotALPN, gotMore)
				}
			}
		}
	}
}

// timedFrame is an Ethernet frame and its time from the start.
type timedFrame struct {
	at time.Duration
	f  []byte
}

// loadAndFollow feeds frames through a Loader, crossing or not, into an
// inspecting table, and returns what the sink heard, with each final
// record's app and ALPN.
func loadAndFollow(t *testing.T, frames []timedFrame, crossing bool) []string {
	t.Helper()
	rec := newRecorder(t)
	tab := NewTable(inspectingOptions(), newFakeMatcher(), rec)
	ld := tab.NewLoader(crossing)
	b := ld.NewBatch()
	ld.Start(b)
	for i, x := range frames {
		r := capture.Record{TS: at(x.at), WireLen: uint32(len(x.f)), Link: capture.LinkEthernet, Data: x.f}
		if !ld.AddFrame(&r) {
			p := ld.Packet()
			p.TS, p.WireLen = r.TS, r.WireLen
			if st := capture.Decode(r.Link, r.Data, p); st != capture.StatusOK {
				t.Fatalf("frame %d: %v", i, st)
			}
			ld.Add(r.Data)
		}
	}
	tab.ProcessBatch(ld.Finish())
	tab.Flush(at(time.Hour))
	out := slices.Clone(rec.lines)
	for _, r := range rec.finals {
		out = append(out, fmt.Sprintf("%d>%d app=%v alpn=%v", r.ClientPort, r.ServerPort, r.App, r.ALPN))
	}
	return out
}

// TestPayloadsAcrossTheClock: the reading side's identification and a
// carried payload stay with their own packet when the packet clock holds
// it (after a quiet second, and the capture's first packet), on both
// paths. They were once lost on the crossing path (a first payload after a
// pause went unread) and taken by the held packet from the next one on
// the other (another flow's HTTP request made it a protocol_mismatch).
func TestPayloadsAcrossTheClock(t *testing.T) {
	unknown := bytes.Repeat([]byte{0xa5}, 100)
	handshakes := []timedFrame{
		{0, tcpFrame(agentAddr, emAddr, 40000, 3741, syn, nil)},
		{1 * ms, tcpFrame(emAddr, agentAddr, 3741, 40000, syn|ack, nil)},
		{2 * ms, tcpFrame(agentAddr, emAddr, 40000, 3741, ack, nil)},
		{3 * ms, tcpFrame(agentAddr, emAddr, 40001, 3741, syn, nil)},
		{4 * ms, tcpFrame(emAddr, agentAddr, 3741, 40001, syn|ack, nil)},
		{5 * ms, tcpFrame(agentAddr, emAddr, 40001, 3741, ack, nil)},
	}
	cases := []struct {
		name   string
		frames []timedFrame
		want   []string // lines every path must give
	}{{
		name: "a first payload right after a held packet",
		frames: append(slices.Clone(handshakes),
			timedFrame{2 * time.Second, tcpFrame(agentAddr, emAddr, 40001, 3741, ack, nil)},
			timedFrame{2*time.Second + ms, tcpFrame(agentAddr, emAddr, 40000, 3741, pshack, httpRequest)}),
		want: []string{"40000>3741 app=http alpn=0", "40001>3741 app=none alpn=0"},
	}, {
		name: "a held packet's own payload",
		frames: append(slices.Clone(handshakes),
			timedFrame{2 * time.Second, tcpFrame(agentAddr, emAddr, 40001, 3741, pshack, unknown)},
			timedFrame{2*time.Second + ms, tcpFrame(agentAddr, emAddr, 40000, 3741, pshack, httpRequest)}),
		want: []string{"40000>3741 app=http alpn=0", "40001>3741 app=unknown alpn=0"},
	}, {
		name: "the capture's first packet",
		frames: []timedFrame{
			{0, tcpFrame(agentAddr, emAddr, 40000, 3741, pshack, httpRequest)},
			{1 * ms, tcpFrame(emAddr, agentAddr, 3741, 40000, ack, nil)},
		},
		want: []string{"40000>3741 app=http alpn=0"},
	}}
	for _, c := range cases {
		seq := loadAndFollow(t, c.frames, false)
		par := loadAndFollow(t, c.frames, true)
		if !slices.Equal(seq, par) {
			t.Errorf("%s: the paths differ:\n one goroutine: %q\n two:           %q", c.name, seq, par)
		}
		for _, w := range c.want {
			if !slices.Contains(par, w) {
				t.Errorf("%s: no %q in %q", c.name, w, par)
			}
		}
	}
}

// TestBothPathsReadAsMuchOfAPayload: a ClientHello whose ALPN comes past
// maxCarry bytes is read alike on both paths (TLS, no ALPN): the reading
// side reads no further than a whole packet carries.
func TestBothPathsReadAsMuchOfAPayload(t *testing.T) {
	for _, pad := range []int{100, maxCarry} {
		frames := []timedFrame{
			{0, tcpFrame(agentAddr, emAddr, 40000, 3741, syn, nil)},
			{1 * ms, tcpFrame(emAddr, agentAddr, 3741, 40000, syn|ack, nil)},
			{2 * ms, tcpFrame(agentAddr, emAddr, 40000, 3741, ack, nil)},
			{3 * ms, tcpFrame(agentAddr, emAddr, 40000, 3741, pshack, paddedHello(pad))},
		}
		seq, par := loadAndFollow(t, frames, false), loadAndFollow(t, frames, true)
		if !slices.Equal(seq, par) {
			t.Errorf("padding %d: the paths differ:\n one goroutine: %q\n two:           %q", pad, seq, par)
		}
		want := fmt.Sprintf("40000>3741 app=tls alpn=%v", dissect.ALPNH2)
		if pad >= maxCarry {
			want = "40000>3741 app=tls alpn=0"
		}
		if !slices.Contains(par, want) {
			t.Errorf("padding %d: no %q in %q", pad, want, par)
		}
	}
}

// paddedHello is a ClientHello offering h2, its ALPN extension after a
// padding extension of pad bytes.
func paddedHello(pad int) []byte {
	body := []byte{0x03, 0x03}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // one cipher suite
	body = append(body, 1, 0)                // no compression
	ext := []byte{0x00, 0x15, byte(pad >> 8), byte(pad)}
	ext = append(ext, make([]byte, pad)...)
	alpn := []byte{0, 3, 2, 'h', '2'}
	ext = append(ext, 0x00, 0x10, 0, byte(len(alpn)))
	ext = append(ext, alpn...)
	body = append(body, byte(len(ext)>>8), byte(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{0x16, 0x03, 0x01, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}
