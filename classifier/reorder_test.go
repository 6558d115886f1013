package classifier

import (
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
)

const us = time.Microsecond

// Issue 17, #9: a capture that records the RST refusing a SYN a few
// microseconds before the SYN (two capture queues, two interfaces, a
// capture split by direction) gave a pending flow of a lone RST and a
// blocked/no_response attempt. The RST is taken for the SYN's refusal: one
// flow, refused. (A SYN-ACK recorded before its SYN was already one flow.)
func TestRSTRecordedBeforeItsSYN(t *testing.T) {
	runScenarios(t, []scenario{{
		name: "RST 5µs before the SYN it refuses: refused",
		pkts: []capture.Packet{
			tcpPkt(0, E, 3741, A, 40000, rstack, 0),
			tcpPkt(5*us, A, 40000, E, 3741, syn, 0),
		},
		flush: 40 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/refused rule=0 REJ "Sr" out=1/100 in=1/100`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/refused rule=0 REJ "Sr" out=1/100 in=1/100`,
		},
	}, {
		name: "SYN-ACK 5µs before its SYN: allowed, as before",
		pkts: []capture.Packet{
			tcpPkt(0, E, 3741, A, 40000, synack, 0),
			tcpPkt(5*us, A, 40000, E, 3741, syn, 0),
			tcpPkt(400*us, A, 40000, E, 3741, ack, 0),
		},
		flush: -1,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 OTH "h" out=0/0 in=1/100`,
		},
	}, {
		name: "a RST a second before the SYN is another connection's",
		pkts: []capture.Packet{
			tcpPkt(0, E, 3741, A, 40000, rstack, 0),
			tcpPkt(sec, A, 40000, E, 3741, syn, 0),
		},
		flush: 40 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 RSTRH "r" out=0/0 in=1/100`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 RSTRH "r" out=0/0 in=1/100`,
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
		},
	}, {
		name: "the SYN's sender's own RST just before it refuses nothing",
		pkts: []capture.Packet{
			tcpPkt(0, A, 40000, E, 3741, rst, 0),
			tcpPkt(5*us, A, 40000, E, 3741, syn, 0),
		},
		flush: 40 * sec,
		want: []string{
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 OTH "R" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 pending rule=0 OTH "R" out=1/100 in=0/0`,
			`decided tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
			`final tcp 10.0.0.2:40000>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
		},
	}})
}

// The counters agree: the lone RST was never a flow of its own.
func TestRSTBeforeSYNCountsOneFlow(t *testing.T) {
	_, tab := run(t, testOptions(), []capture.Packet{
		tcpPkt(0, E, 3741, A, 40000, rstack, 0),
		tcpPkt(5*us, A, 40000, E, 3741, syn, 0),
	}, 40*sec)
	if s := tab.Stats(); s.FlowsCreated != 1 || s.FlowsEnded != 1 {
		t.Errorf("stats %+v, want one flow created and ended", s)
	}
}
