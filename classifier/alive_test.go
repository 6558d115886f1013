package classifier

import (
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
)

// aliveRecorder is a recorder that also collects Alive calls.
type aliveRecorder struct {
	*recorder
	alive []int64 // r.Last of each Alive call
}

func (a *aliveRecorder) Alive(r *FlowRecord) {
	if r.Verdict != Allowed {
		a.t.Errorf("Alive for a %s flow", r.Verdict)
	}
	a.alive = append(a.alive, r.Last)
}

// A session that stays open for 20 minutes, with a packet a minute, keeps
// telling an AliveSink that its rule works, at least once per idle timeout
// and never per packet.
func TestAliveReportsLongSessions(t *testing.T) {
	rec := &aliveRecorder{recorder: newRecorder(t)}
	tab := NewTable(testOptions(), newFakeMatcher(), rec)
	pkts := []capture.Packet{
		tcpPkt(0, agentAddr, 50000, emAddr, 3741, capture.TCPSyn, 0),
		tcpPkt(time.Millisecond, emAddr, 3741, agentAddr, 50000, capture.TCPSyn|capture.TCPAck, 0),
	}
	for m := 1; m <= 20; m++ {
		pkts = append(pkts, tcpPkt(time.Duration(m)*time.Minute, agentAddr, 50000, emAddr, 3741, capture.TCPAck|capture.TCPPsh, 100))
	}
	for i := range pkts {
		tab.Process(&pkts[i])
	}
	tab.Advance(at(20*time.Minute + time.Second))
	// The idle timeout is 5 minutes: over 20 minutes, at least 3 reports.
	if len(rec.alive) < 3 || len(rec.alive) > 10 {
		t.Fatalf("%d Alive calls over 20 minutes of a live session, want about one per 5 minutes", len(rec.alive))
	}
	for i := 1; i < len(rec.alive); i++ {
		if rec.alive[i] <= rec.alive[i-1] {
			t.Errorf("Alive times do not advance: %v", rec.alive)
		}
	}
	if last := rec.alive[len(rec.alive)-1]; last < at(15*time.Minute) {
		t.Errorf("last Alive reports packet time %v, want within the last idle timeout", time.Duration(last-t0))
	}
}
