package classifier

import (
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
)

// Issue 17, #6, for options set in Go: timeouts of 2,500,000 hours
// overflowed packet time, turning a working connection blocked and
// splitting one connection into several flows. They are capped at what a
// config may set (policy.MaxTimeouts), and a packet time of 2116 plus the
// longest of them does not overflow either.
func TestHugeTimeoutsAreCapped(t *testing.T) {
	huge := 2_500_000 * time.Hour
	opts := testOptions()
	opts.AttemptTimeout, opts.UDPReplyTimeout, opts.UDPICMPWait = huge, huge, huge
	opts.TCPIdle, opts.UDPIdle, opts.TCPClosed = huge, huge, huge
	got := opts.withDefaults()
	if got.AttemptTimeout != time.Hour || got.TCPIdle != 24*time.Hour || got.UDPICMPWait != 5*time.Minute {
		t.Errorf("options %+v, want the config's maxima", got)
	}
	pkts := cat(handshake(A, 40000, E, 3741, 0), []capture.Packet{
		tcpPkt(10*time.Minute, A, 40000, E, 3741, pshack, 10),
		tcpPkt(10*time.Minute+ms, E, 3741, A, 40000, ack, 0),
		tcpPkt(20*time.Hour, A, 40000, E, 3741, pshack, 10),
		tcpPkt(20*time.Hour+ms, E, 3741, A, 40000, ack, 0),
	})
	rec, _ := run(t, opts, pkts, 20*time.Hour+ms)
	if len(rec.finals) != 1 || rec.finals[0].Verdict != Allowed {
		t.Errorf("one connection, 20 hours: %q", rec.lines)
	}
	// The latest time a capture file gives, plus a day of timeout.
	late := tcpPkt(0, A, 40000, E, 3741, syn, 0)
	late.TS = 1 << 62
	tab := NewTable(opts, newFakeMatcher(), newRecorder(t))
	tab.Process(&late)
	if end := tab.endAt(0); end < late.TS {
		t.Errorf("the flow of a packet at %d ends at %d: overflow", late.TS, end)
	}
}
