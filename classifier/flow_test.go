package classifier

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

const (
	ms     = time.Millisecond
	sec    = time.Second
	A, E   = "10.0.0.2", "10.0.0.1" // an agent, the Enterprise Manager
	A6, E6 = "2001:db8::2", "2001:db8::1"
	C      = "10.0.0.3" // an admin console
	EA     = "10.0.0.4" // an Enterprise Manager that runs an agent
	X, Y   = "192.0.2.1", "192.0.2.2"
	router = "10.0.0.254"
)

// handshake is a client's connection to server:port that opens and stays
// open: SYN, SYN-ACK, ACK.
func handshake(client string, cport uint16, server string, sport uint16, start time.Duration) []capture.Packet {
	return []capture.Packet{
		tcpPkt(start, client, cport, server, sport, syn, 0),
		tcpPkt(start+10*ms, server, sport, client, cport, synack, 0),
		tcpPkt(start+20*ms, client, cport, server, sport, ack, 0),
	}
}

func cat(parts ...[]capture.Packet) []capture.Packet { return slices.Concat(parts...) }

type scenario struct {
	name  string
	pkts  []capture.Packet
	flush time.Duration // -1: no Flush
	want  []string      // the sink's calls, in order
}

func runScenarios(t *testing.T, scenarios []scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec, _ := run(t, testOptions(), sc.pkts, sc.flush)
			if !slices.Equal(rec.lines, sc.want) {
				t.Errorf("sink calls:\n  got  %s\n  want %s", strings.Join(rec.lines, "\n       "), strings.Join(sc.want, "\n       "))
			}
		})
	}
}

func TestTCPVerdicts(t *testing.T) {
	runScenarios(t, []scenario{{
		name: "allowed, normal close",
		pkts: cat(handshake(A, 40000, E, 3741, 0), []capture.Packet{
			tcpPkt(30*ms, A, 40000, E, 3741, pshack, 60),
			tcpPkt(40*ms, E, 3741, A, 40000, pshack, 60),
			tcpPkt(50*ms, A, 40000, E, 3741, finack, 0),
			tcpPkt(60*ms, E, 3741, A, 40000, finack, 0),
			tcpPkt(70*ms, A, 40000, E, 3741, ack, 0),
		}),
		flush: 10 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "Sh" out=1/100 in=1/100`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 SF "ShADdFf" out=5/500 in=3/300`,
		},
	}, {
		name: "refused",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, syn, 0),
			tcpPkt(1*ms, E, 3741, A, 40000, rstack, 0),
		},
		flush: 10 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/refused rule=0 REJ "Sr" out=1/100 in=1/100`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/refused rule=0 REJ "Sr" out=1/100 in=1/100`,
		},
	}, {
		name: "no response, decided at Flush after the deadline",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, syn, 0),
			tcpPkt(1*sec, A, 40000, E, 3741, syn, 0),
			tcpPkt(3*sec, A, 40000, E, 3741, syn, 0),
		},
		flush: 31 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=3/300 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=3/300 in=0/0`,
		},
	}, {
		name:  "Flush exactly at the deadline: no response",
		pkts:  []capture.Packet{tcpPkt(0, A, 40000, E, 3741, syn, 0)},
		flush: 30 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
		},
	}, {
		name:  "Flush before the deadline: pending",
		pkts:  []capture.Packet{tcpPkt(0, A, 40000, E, 3741, syn, 0)},
		flush: 30*sec - 1,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 S0 "S" out=1/100 in=0/0`,
		},
	}, {
		name: "SYN-ACK just before the deadline: allowed",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, syn, 0),
			tcpPkt(30*sec-1, E, 3741, A, 40000, synack, 0),
			confirm(30*sec - 1),
		},
		flush: -1,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "Sh" out=1/100 in=1/100`,
		},
	}, {
		name: "SYN-ACK at the deadline: too late",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, syn, 0),
			tcpPkt(30*sec, E, 3741, A, 40000, synack, 0),
		},
		flush: 31 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S1 "Sh" out=1/100 in=1/100`,
		},
	}, {
		name: "deadline passed by other traffic: the sweep decides",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, syn, 0),
			udpPkt(30*sec, X, 5000, Y, 53, 10),
			confirm(30 * sec),
		},
		flush: -1,
		want: []string{
			// Deadlines up to the packet's time come before the packet.
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
			`decided udp 192.0.2.1:5000>192.0.2.2:53 ignored rule=-1 S0 "D" out=1/100 in=0/0`,
		},
	}, {
		name: "reset after it worked: still allowed",
		pkts: cat(handshake(A, 40000, E, 3741, 0), []capture.Packet{
			tcpPkt(30*ms, E, 3741, A, 40000, rstack, 0),
		}),
		flush: 10 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "Sh" out=1/100 in=1/100`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 RSTR "ShAr" out=2/200 in=2/200`,
		},
	}, {
		name: "client ACK proves a SYN-ACK the sensor missed",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, syn, 0),
			tcpPkt(20*ms, A, 40000, E, 3741, ack, 0),
		},
		flush: -1,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S0 "SA" out=2/200 in=0/0`,
		},
	}, {
		name: "mid-stream without ACK stays undecided, then pending",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, capture.TCPFin, 0),
		},
		flush: 1 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 SH "F" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 SH "F" out=1/100 in=0/0`,
		},
	}, {
		name: "mid-stream, no ACK but both directions: allowed",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, capture.TCPFin, 0),
			tcpPkt(1*ms, E, 3741, A, 40000, capture.TCPFin, 0),
		},
		flush: -1,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 SF "Ff" out=1/100 in=1/100`,
		},
	}, {
		name: "client gives up (SYN, RST): decided at the deadline",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, syn, 0),
			tcpPkt(1*sec, A, 40000, E, 3741, rst, 0),
			udpPkt(29*sec, X, 5000, Y, 53, 0),
			udpPkt(30*sec, X, 5000, Y, 53, 0),
		},
		flush: -1,
		want: []string{
			`decided udp 192.0.2.1:5000>192.0.2.2:53 ignored rule=-1 S0 "" out=1/100 in=0/0`,
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 RSTOS0 "SR" out=2/200 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 RSTOS0 "SR" out=2/200 in=0/0`,
		},
	}})
}

// TestUnexpectedAndIgnored: an unexpected flow is decided once its
// outcome is known (an answer, a refusal, an ICMP error, its attempt
// timeout, its end), with that outcome, so that an unauthorized client that
// got in and one that was turned away are two findings.
func TestUnexpectedAndIgnored(t *testing.T) {
	syn4 := tcpPkt(0, C, 50000, E, 3741, syn, 0)
	runScenarios(t, []scenario{{
		name:  "feature disabled, nothing back yet",
		pkts:  []capture.Packet{tcpPkt(0, E, 50000, A, 135, syn, 0)},
		flush: -1,
		want:  nil,
	}, {
		name:  "feature disabled, no response",
		pkts:  []capture.Packet{tcpPkt(0, E, 50000, A, 135, syn, 0)},
		flush: 30 * sec,
		want: []string{
			`decided tcp 10.0.0.1:50000>10.0.0.2:135 unexpected/feature_disabled outcome=no_response rule=3 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.1:50000>10.0.0.2:135 unexpected/feature_disabled outcome=no_response rule=3 S0 "S" out=1/100 in=0/0`,
		},
	}, {
		name:  "unauthorized client got in",
		pkts:  handshake(C, 50000, E, 3741, 0),
		flush: -1,
		want:  []string{`decided tcp 10.0.0.3:50000>10.0.0.1:3741 unexpected/unauthorized_client outcome=worked rule=0 S1 "Sh" out=1/100 in=1/100`},
	}, {
		name:  "unauthorized client turned away",
		pkts:  []capture.Packet{syn4, tcpPkt(1*ms, E, 3741, C, 50000, rstack, 0)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.3:50000>10.0.0.1:3741 unexpected/unauthorized_client outcome=refused rule=0 REJ "Sr" out=1/100 in=1/100`},
	}, {
		name:  "unauthorized client blocked by a firewall",
		pkts:  []capture.Packet{syn4, icmpErr(1*ms, router, 3, 13, syn4)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.3:50000>10.0.0.1:3741 unexpected/unauthorized_client outcome=icmp_unreachable rule=0 S0 "S" out=1/100 in=0/0 icmp=3/13 from 10.0.0.254`},
	}, {
		name:  "no rule, the capture ends before the timeout: unknown",
		pkts:  []capture.Packet{tcpPkt(0, A, 50000, E, 8080, syn, 0)},
		flush: 1 * sec,
		want: []string{
			`decided tcp 10.0.0.2:50000>10.0.0.1:8080 unexpected/no_rule outcome=unknown rule=-1 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:50000>10.0.0.1:8080 unexpected/no_rule outcome=unknown rule=-1 S0 "S" out=1/100 in=0/0`,
		},
	}, {
		name:  "no rule, mid-stream: the first segment says it worked",
		pkts:  []capture.Packet{tcpPkt(0, A, 50000, E, 22, pshack, 10)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.2:50000>10.0.0.1:22 unexpected/no_rule outcome=worked rule=-1 OTH "D" out=1/100 in=0/0`},
	}, {
		name: "ignored, and a SYN-ACK does not change it",
		pkts: []capture.Packet{
			tcpPkt(0, X, 50000, Y, 80, syn, 0),
			tcpPkt(1*ms, Y, 80, X, 50000, synack, 0),
		},
		flush: 1 * sec,
		want: []string{
			`decided tcp 192.0.2.1:50000>192.0.2.2:80 ignored rule=-1 S0 "S" out=1/100 in=0/0`,
			`final tcp 192.0.2.1:50000>192.0.2.2:80 ignored rule=-1 S1 "Sh" out=1/100 in=1/100`,
		},
	}})
}

// TestLearningFromEvidence: with an inferred inventory, a flow to a port
// that teaches is decided when it shows what it is, and only what it
// showed teaches: the server that answered, the client that went on.
func TestLearningFromEvidence(t *testing.T) {
	const S, Z = "10.0.0.9", "10.0.0.8" // a stranger, a server nobody knows yet
	for _, tt := range []struct {
		name  string
		pkts  []capture.Packet
		flush time.Duration
		want  []string
		roles map[string]policy.RoleSet // what the inventory holds at the end
	}{{
		name: "a handshake teaches both ends",
		pkts: handshake(S, 40000, Z, 3741, 0),
		want: []string{`decided tcp 10.0.0.9:40000>10.0.0.8:3741 allowed rule=0 S1 "ShA" out=2/200 in=1/100`},
		roles: map[string]policy.RoleSet{
			S: policy.RoleSet(0).With(policy.Agent), Z: policy.RoleSet(0).With(policy.EnterpriseManager),
		},
	}, {
		name:  "mid-session, the server's ACK alone teaches both ends",
		pkts:  []capture.Packet{tcpPkt(0, E, 3741, S, 40000, ack, 0)},
		flush: 30 * sec,
		want: []string{
			`decided tcp 10.0.0.9:40000>10.0.0.1:3741 allowed rule=0 OTH "a" out=0/0 in=1/100`,
			`final tcp 10.0.0.9:40000>10.0.0.1:3741 allowed rule=0 OTH "a" out=0/0 in=1/100`,
		},
		roles: map[string]policy.RoleSet{
			S: policy.RoleSet(0).With(policy.Agent),
		},
	}, {
		name:  "mid-session, the server's RST teaches nothing of the client",
		pkts:  []capture.Packet{tcpPkt(0, E, 3741, S, 40000, rst, 0)},
		flush: 30 * sec,
		want: []string{
			`decided tcp 10.0.0.9:40000>10.0.0.1:3741 pending rule=0 RSTRH "r" out=0/0 in=1/100`,
			`final tcp 10.0.0.9:40000>10.0.0.1:3741 pending rule=0 RSTRH "r" out=0/0 in=1/100`,
		},
		roles: map[string]policy.RoleSet{S: 0},
	}, {
		name: "a scan: the server answered, the client reset",
		pkts: []capture.Packet{
			tcpPkt(0, S, 40000, E, 3741, syn, 0),
			tcpPkt(1*ms, E, 3741, S, 40000, synack, 0),
			tcpPkt(2*ms, S, 40000, E, 3741, rst, 0),
		},
		want:  []string{`decided tcp 10.0.0.9:40000>10.0.0.1:3741 unexpected/unauthorized_client outcome=worked rule=0 RSTO "ShR" out=2/200 in=1/100`},
		roles: map[string]policy.RoleSet{S: 0},
	}, {
		name:  "nothing answers a stranger's SYN to nobody: ignored, nothing learned",
		pkts:  []capture.Packet{tcpPkt(0, S, 40000, Z, 3741, syn, 0)},
		flush: 30 * sec,
		want: []string{
			`decided tcp 10.0.0.9:40000>10.0.0.8:3741 ignored rule=-1 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.9:40000>10.0.0.8:3741 ignored rule=-1 S0 "S" out=1/100 in=0/0`,
		},
		roles: map[string]policy.RoleSet{S: 0, Z: 0},
	}, {
		name:  "nothing answers a stranger's SYN to the Enterprise Manager: an agent that cannot reach it",
		pkts:  []capture.Packet{tcpPkt(0, S, 40000, E, 3741, syn, 0)},
		flush: 30 * sec,
		want: []string{
			`decided tcp 10.0.0.9:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.9:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
		},
		roles: map[string]policy.RoleSet{S: 0},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMatcher()
			m.learns = true
			rec := newRecorder(t)
			tab := NewTable(testOptions(), m, rec)
			for i := range tt.pkts {
				tab.Process(&tt.pkts[i])
			}
			if tt.flush > 0 {
				tab.Flush(at(tt.flush))
			}
			if !slices.Equal(rec.lines, tt.want) {
				t.Errorf("sink calls:\n  got  %s\n  want %s", strings.Join(rec.lines, "\n       "), strings.Join(tt.want, "\n       "))
			}
			for host, want := range tt.roles {
				if got := m.roles[addr(host)]; got != want {
					t.Errorf("%s holds %q, want %q", host, got, want)
				}
			}
		})
	}
}

func TestUDPVerdicts(t *testing.T) {
	runScenarios(t, []scenario{{
		name: "request and reply",
		pkts: []capture.Packet{
			udpPkt(0, A, 50000, E, 5353, 40),
			udpPkt(5*ms, E, 5353, A, 50000, 80),
		},
		flush: -1,
		want:  []string{`decided udp 10.0.0.2:50000>10.0.0.1:5353 allowed rule=2 SF "Dd" out=1/100 in=1/100`},
	}, {
		name:  "request without reply: no response",
		pkts:  []capture.Packet{udpPkt(0, A, 50000, E, 5353, 40)},
		flush: 10 * sec,
		want: []string{
			`decided udp 10.0.0.2:50000>10.0.0.1:5353 blocked/no_response rule=2 S0 "D" out=1/100 in=0/0`,
			`final udp 10.0.0.2:50000>10.0.0.1:5353 blocked/no_response rule=2 S0 "D" out=1/100 in=0/0`,
		},
	}, {
		name: "one-way rule: allowed at the deadline",
		pkts: []capture.Packet{
			udpPkt(0, A, 50000, E, 10001, 40),
			udpPkt(1*sec, A, 50000, E, 10001, 40),
		},
		flush: 10 * sec,
		want: []string{
			`decided udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=2/200 in=0/0`,
			`final udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=2/200 in=0/0`,
		},
	}, {
		name:  "one-way rule: allowed once the ICMP wait has passed, though the capture ends soon after",
		pkts:  []capture.Packet{udpPkt(0, A, 50000, E, 10001, 40)},
		flush: 2 * sec,
		want: []string{
			`decided udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=1/100 in=0/0`,
			`final udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=1/100 in=0/0`,
		},
	}, {
		name:  "one-way rule, replay ends inside the ICMP wait: pending",
		pkts:  []capture.Packet{udpPkt(0, A, 50000, E, 10001, 40)},
		flush: 2*sec - 1,
		want: []string{
			`decided udp 10.0.0.2:50000>10.0.0.1:10001 pending rule=1 S0 "D" out=1/100 in=0/0`,
			`final udp 10.0.0.2:50000>10.0.0.1:10001 pending rule=1 S0 "D" out=1/100 in=0/0`,
		},
	}, {
		name: "idle timeout ends it, at the boundary",
		pkts: []capture.Packet{
			udpPkt(0, A, 50000, E, 5353, 40),
			udpPkt(1*ms, E, 5353, A, 50000, 40),
			udpPkt(1*ms+time.Minute-1, X, 5000, Y, 53, 0),
			udpPkt(1*ms+time.Minute, X, 5000, Y, 53, 0),
		},
		flush: -1,
		want: []string{
			`decided udp 10.0.0.2:50000>10.0.0.1:5353 allowed rule=2 SF "Dd" out=1/100 in=1/100`,
			`decided udp 192.0.2.1:5000>192.0.2.2:53 ignored rule=-1 S0 "" out=1/100 in=0/0`,
			`final udp 10.0.0.2:50000>10.0.0.1:5353 allowed rule=2 SF "Dd" out=1/100 in=1/100`,
		},
	}})
}

func TestICMPErrors(t *testing.T) {
	syn4 := tcpPkt(0, A, 40000, E, 3741, syn, 0)
	udp6 := udpPkt(0, A6, 50000, E6, 5353, 40)
	runScenarios(t, []scenario{{
		name:  "ICMP administratively prohibited blocks a SYN",
		pkts:  []capture.Packet{syn4, icmpErr(5*ms, router, 3, 13, syn4)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/icmp_unreachable rule=0 S0 "S" out=1/100 in=0/0 icmp=3/13 from 10.0.0.254`},
	}, {
		name:  "ICMPv6 unreachable blocks a UDP request",
		pkts:  []capture.Packet{udp6, icmpErr(5*ms, "2001:db8::fe", 1, 1, udp6)},
		flush: 1 * sec,
		want: []string{
			`decided udp 2001:db8::2:50000>2001:db8::1:5353 blocked/icmp_unreachable rule=2 S0 "D" out=1/100 in=0/0 icmp=1/1 from 2001:db8::fe`,
			`final udp 2001:db8::2:50000>2001:db8::1:5353 blocked/icmp_unreachable rule=2 S0 "D" out=1/100 in=0/0 icmp=1/1 from 2001:db8::fe`,
		},
	}, {
		name:  "fragmentation needed is path-MTU discovery, not a block",
		pkts:  []capture.Packet{udpPkt(0, A, 50000, E, 10001, 1400), icmpErr(1*ms, router, 3, 4, udpPkt(0, A, 50000, E, 10001, 1400))},
		flush: 3 * sec,
		want: []string{
			`decided udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=1/100 in=0/0`,
			`final udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=1/100 in=0/0`,
		},
	}, {
		// The client's own port unreachable about the server's datagram
		// says nothing of whether the client reached the server.
		name: "the client's error about the server's datagram does not block the client",
		pkts: []capture.Packet{
			udpPkt(0, A, 50000, E, 10001, 40),
			icmpErr(1*ms, A, 3, 3, udpPkt(0, E, 10001, A, 50000, 40)),
		},
		flush: 3 * sec,
		want: []string{
			`decided udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=1/100 in=0/0`,
			`final udp 10.0.0.2:50000>10.0.0.1:10001 allowed rule=1 S0 "D" out=1/100 in=0/0`,
		},
	}, {
		name:  "an error after the flow worked changes nothing",
		pkts:  cat(handshake(A, 40000, E, 3741, 0), []capture.Packet{icmpErr(30*ms, router, 3, 1, syn4)}),
		flush: -1,
		want:  []string{`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "Sh" out=1/100 in=1/100`},
	}, {
		name:  "an error after the deadline comes too late",
		pkts:  []capture.Packet{syn4, icmpErr(30*sec, router, 3, 1, syn4), confirm(30 * sec)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`},
	}, {
		name:  "an error quoting an unknown flow makes none",
		pkts:  []capture.Packet{icmpErr(0, router, 3, 1, syn4)},
		flush: 1 * sec,
		want:  nil,
	}})
}

func TestOrientation(t *testing.T) {
	runScenarios(t, []scenario{{
		name:  "SYN-ACK first: its sender is the server",
		pkts:  []capture.Packet{tcpPkt(0, E, 3741, A, 40000, synack, 0)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 OTH "h" out=0/0 in=1/100`},
	}, {
		name:  "SYN from the high port to the low one",
		pkts:  []capture.Packet{tcpPkt(0, X, 80, Y, 50000, syn, 0)},
		flush: -1,
		want:  []string{`decided tcp 192.0.2.1:80>192.0.2.2:50000 ignored rule=-1 S0 "S" out=1/100 in=0/0`},
	}, {
		name:  "mid-stream: the documented server port wins",
		pkts:  []capture.Packet{tcpPkt(0, E, 3741, A, 40000, pshack, 10)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 OTH "d" out=0/0 in=1/100`},
	}, {
		name:  "mid-stream: a wide-range score beats the lower port",
		pkts:  []capture.Packet{tcpPkt(0, E, 50000, A, 60000, ack, 0)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.1:50000>10.0.0.2:60000 allowed rule=4 OTH "A" out=1/100 in=0/0`},
	}, {
		name:  "mid-stream, equal scores: the lower port is the server",
		pkts:  []capture.Packet{tcpPkt(0, Y, 80, X, 5000, pshack, 10)},
		flush: -1,
		want:  []string{`decided tcp 192.0.2.1:5000>192.0.2.2:80 ignored rule=-1 OTH "d" out=0/0 in=1/100`},
	}, {
		name:  "UDP: the documented server port wins even as the sender",
		pkts:  []capture.Packet{udpPkt(0, E, 10001, A, 10002, 10)},
		flush: -1,
		want:  []string{`decided udp 10.0.0.2:10002>10.0.0.1:10001 allowed rule=1 SHR "d" out=0/0 in=1/100`},
	}, {
		name:  "UDP, same port: the first receiver is the server",
		pkts:  []capture.Packet{udpPkt(0, Y, 123, X, 123, 48)},
		flush: -1,
		want:  []string{`decided udp 192.0.2.2:123>192.0.2.1:123 ignored rule=-1 S0 "D" out=1/100 in=0/0`},
	}, {
		// The agent's port is in the DCOM range of a rule of its role; the
		// Enterprise Manager's 445 is a service's port, and that wins.
		name:  "mid-stream: a well-known port beats a wide range",
		pkts:  []capture.Packet{tcpPkt(0, A, 64952, E, 445, pshack, 10)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.2:64952>10.0.0.1:445 unexpected/no_rule outcome=worked rule=-1 OTH "D" out=1/100 in=0/0`},
	}, {
		// Both ports are in wide ranges of their hosts' roles: the end a
		// rule admits the other as a client of is the server, whatever
		// the lower port.
		name:  "mid-stream, two wide ranges: the rule that admits the other end decides",
		pkts:  []capture.Packet{tcpPkt(0, A, 50500, EA, 49999, pshack, 10)},
		flush: -1,
		want:  []string{`decided tcp 10.0.0.4:49999>10.0.0.2:50500 allowed rule=4 OTH "d" out=0/0 in=1/100`},
	}})
}

func TestConnStates(t *testing.T) {
	open := handshake(A, 40000, E, 3741, 0)
	c2s := func(ts time.Duration, flags uint8) capture.Packet { return tcpPkt(ts, A, 40000, E, 3741, flags, 0) }
	s2c := func(ts time.Duration, flags uint8) capture.Packet { return tcpPkt(ts, E, 3741, A, 40000, flags, 0) }
	cases := []struct {
		name    string
		pkts    []capture.Packet
		state   ConnState
		history string
	}{
		{"S0", []capture.Packet{c2s(0, syn)}, S0, "S"},
		{"S1", open, S1, "ShA"},
		{"SF", cat(open, []capture.Packet{c2s(time.Second, finack), s2c(time.Second, finack)}), SF, "ShAFf"},
		{"REJ", []capture.Packet{c2s(0, syn), s2c(time.Millisecond, rstack)}, REJ, "Sr"},
		{"S2", cat(open, []capture.Packet{c2s(time.Second, finack)}), S2, "ShAF"},
		{"S3", cat(open, []capture.Packet{s2c(time.Second, finack)}), S3, "ShAf"},
		{"RSTO", cat(open, []capture.Packet{c2s(time.Second, rst)}), RSTO, "ShAR"},
		{"RSTR", cat(open, []capture.Packet{s2c(time.Second, rst)}), RSTR, "ShAr"},
		{"RSTOS0", []capture.Packet{c2s(0, syn), c2s(time.Second, rst)}, RSTOS0, "SR"},
		{"RSTRH", []capture.Packet{s2c(0, synack), s2c(time.Second, rst)}, RSTRH, "hr"},
		{"SH", []capture.Packet{c2s(0, syn), c2s(time.Second, capture.TCPFin)}, SH, "SF"},
		{"SHR", []capture.Packet{s2c(0, synack), s2c(time.Second, capture.TCPFin)}, SHR, "hf"},
		{"OTH", []capture.Packet{c2s(0, pshack), s2c(time.Millisecond, ack)}, OTH, "Aa"},
		{"UDP SF", []capture.Packet{udpPkt(0, A, 5, E, 5353, 1), udpPkt(1, E, 5353, A, 5, 1)}, SF, "Dd"},
		{"UDP S0", []capture.Packet{udpPkt(0, A, 5, E, 5353, 1)}, S0, "D"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, _ := run(t, testOptions(), c.pkts, time.Hour)
			if len(rec.finals) != 1 {
				t.Fatalf("got %d flows, want 1: %v", len(rec.finals), rec.lines)
			}
			r := rec.finals[0]
			if r.ConnState != c.state || r.HistoryString() != c.history {
				t.Errorf("got %v %q, want %v %q", r.ConnState, r.HistoryString(), c.state, c.history)
			}
		})
	}
}

func TestPortReuse(t *testing.T) {
	closed := cat(handshake(A, 40000, E, 3741, 0), []capture.Packet{
		tcpPkt(30*ms, A, 40000, E, 3741, finack, 0),
		tcpPkt(40*ms, E, 3741, A, 40000, finack, 0),
		tcpPkt(50*ms, A, 40000, E, 3741, ack, 0),
	})
	oldFinal := `final tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 SF "ShAFf" out=4/400 in=2/200`
	for _, gap := range []time.Duration{time.Second, time.Minute} {
		pkts := cat(closed, handshake(A, 40000, E, 3741, 50*ms+gap))
		rec, tab := run(t, testOptions(), pkts, -1)
		want := []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "Sh" out=1/100 in=1/100`,
			oldFinal,
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "Sh" out=1/100 in=1/100`,
		}
		if !slices.Equal(rec.lines, want) {
			t.Errorf("gap %v: got\n%s", gap, strings.Join(rec.lines, "\n"))
		}
		tab.Flush(at(time.Hour))
		s := tab.Stats()
		// A new SYN inside the linger ends the old flow itself; after it,
		// the linger has (an expiry). Flush does not count as one.
		wantExpired := uint64(0)
		if gap > testOptions().TCPClosed {
			wantExpired = 1
		}
		if s.FlowsCreated != 2 || s.FlowsEnded != 2 || s.FlowsExpired != wantExpired {
			t.Errorf("gap %v: stats %+v", gap, s)
		}
	}
}

func TestMatchOnceAndRolesAtDecision(t *testing.T) {
	m := newFakeMatcher()
	m.log = true
	rec := newRecorder(t)
	tab := NewTable(testOptions(), m, rec)
	p := tcpPkt(0, A, 40000, E, 3741, syn, 0)
	tab.Process(&p)
	want := []string{"match tcp 3741"}
	if !slices.Equal(m.calls, want) {
		t.Errorf("matcher calls %q, want %q", m.calls, want)
	}
	// The agent gains a role before the flow is decided: the record shows it.
	m.roles[addr(A)] = m.roles[addr(A)].With(policy.SIEM)
	p = tcpPkt(1*ms, E, 3741, A, 40000, synack, 0)
	tab.Process(&p)
	tab.Process(&p) // a second packet consults nothing
	if !slices.Equal(m.calls, want) {
		t.Errorf("matcher consulted per packet: %q", m.calls)
	}
	tab.Flush(at(time.Second))
	if len(rec.finals) != 1 || !rec.finals[0].ClientRoles.Has(policy.SIEM) || !rec.finals[0].ServerRoles.Has(policy.EnterpriseManager) {
		t.Errorf("roles at decision not kept: %+v", rec.finals)
	}
}

func TestSetMatcher(t *testing.T) {
	rec := newRecorder(t)
	tab := NewTable(testOptions(), nil, rec)
	p := tcpPkt(0, A, 40000, E, 3741, syn, 0)
	tab.Process(&p)
	tab.SetMatcher(newFakeMatcher())
	q := tcpPkt(1*ms, A, 40001, E, 3741, syn, 0)
	tab.Process(&q)
	tab.Flush(at(time.Minute))
	got := []Verdict{rec.finals[0].Verdict, rec.finals[1].Verdict}
	if got[0] != Ignored || got[1] != Blocked {
		t.Errorf("verdicts %v, want the old flow ignored and the new one blocked", got)
	}
}

func TestCounters(t *testing.T) {
	syn4 := tcpPkt(0, A, 40000, E, 3741, syn, 0)
	frag := udpPkt(0, A, 0, E, 0, 0)
	frag.Fragment = true
	echo := ipPkt(0, A, E, capture.ProtoICMP)
	gre := ipPkt(0, A, E, 47)
	noIP := capture.Packet{TS: at(0)}
	pkts := []capture.Packet{syn4, frag, echo, gre, noIP,
		icmpErr(1*ms, router, 3, 1, syn4),
		icmpErr(1*ms, router, 3, 1, tcpPkt(0, A, 1, E, 2, syn, 0)),
	}
	_, tab := run(t, testOptions(), pkts, time.Second)
	want := Stats{Packets: 7, NotFollowed: 3, Fragments: 1, ICMPErrors: 2, ICMPMatched: 1,
		FlowsCreated: 1, FlowsEnded: 1, Capacity: uint64(testOptions().MaxFlows)}
	if got := tab.Stats(); got != want {
		t.Errorf("stats\n got  %+v\n want %+v", got, want)
	}
}

func TestAdvanceDecidesOnAQuietNetwork(t *testing.T) {
	rec := newRecorder(t)
	tab := NewTable(testOptions(), newFakeMatcher(), rec)
	p := tcpPkt(0, A, 40000, E, 3741, syn, 0)
	tab.Process(&p)
	tab.Advance(at(30*sec - 1))
	if len(rec.lines) != 0 {
		t.Fatalf("decided before the deadline: %v", rec.lines)
	}
	tab.Advance(at(30 * sec))
	if len(rec.lines) != 1 || !strings.Contains(rec.lines[0], "blocked/no_response") {
		t.Fatalf("not decided at the deadline: %v", rec.lines)
	}
	tab.Advance(at(30*sec + 5*time.Minute))
	if s := tab.Stats(); s.Active != 0 || s.FlowsExpired != 1 || s.Packets != 1 {
		t.Errorf("stats after the idle timeout: %+v", s)
	}
}
