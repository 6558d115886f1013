package classifier

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
)

const tenYears = 10 * 365 * 24 * time.Hour

// Issue 17, #7: one packet stamped ten years ahead, in the middle of a
// working session, moved the clock ten years: the session expired and was
// reported twice, an attempt after it was timed from the future and left
// pending, and flows carried timestamps from the future. The clock holds
// that packet until the next one, which does not confirm it: it is
// followed at the clock's time and counted as a clock jump.
func TestOneRogueTimestampDoesNotPoisonTheRest(t *testing.T) {
	rogue := tcpPkt(2*sec, A, 40000, E, 3741, pshack, 100)
	rogue.TS += int64(tenYears)
	pkts := cat(
		handshake(A, 40000, E, 3741, 0),
		[]capture.Packet{
			tcpPkt(1*sec, A, 40000, E, 3741, pshack, 100),
			rogue,
			tcpPkt(2*sec+10*ms, E, 3741, A, 40000, ack, 0),
			// An attempt after it, which the capture outlives.
			tcpPkt(5*sec, A, 40001, E, 3741, syn, 0),
			tcpPkt(20*sec, A, 40000, E, 3741, pshack, 100),
			tcpPkt(40*sec, A, 40000, E, 3741, pshack, 100),
		},
	)
	rec, tab := run(t, testOptions(), pkts, 40*sec)
	var got []string
	for _, r := range rec.finals {
		got = append(got, describe(&r))
		if r.Last > at(40*sec) || r.First > at(40*sec) {
			t.Errorf("a time from the future: first %d, last %d: %s", r.First, r.Last, describe(&r))
		}
	}
	wantFinals := []string{
		`tcp 10.0.0.2:40000>10.0.0.1:3741 allowed rule=0 S1 "ShADa" out=6/600 in=2/200`,
		`tcp 10.0.0.2:40001>10.0.0.1:3741 blocked/no_response rule=0 S0 "S" out=1/100 in=0/0`,
	}
	slices.Sort(got)
	if !slices.Equal(got, wantFinals) {
		t.Errorf("flows:\n  got  %s\n  want %s", strings.Join(got, "\n       "), strings.Join(wantFinals, "\n       "))
	}
	if j := tab.Stats().ClockJumps; j != 1 {
		t.Errorf("%d clock jumps counted, want 1", j)
	}
}

// A clock that steps back an hour: the flows after the step carry their
// own times, and their deadlines run in the stepped clock.
func TestClockSteppingBack(t *testing.T) {
	back := func(p capture.Packet) capture.Packet { p.TS -= int64(time.Hour); return p }
	pkts := cat(
		handshake(A, 40000, E, 3741, 0),
		[]capture.Packet{
			tcpPkt(500*ms, A, 40000, E, 3741, pshack, 100),
			// The step: an hour back, the next packets 10 s later.
			back(tcpPkt(11*sec, A, 40001, E, 3741, syn, 0)),
			back(tcpPkt(11*sec+10*ms, E, 3741, A, 40001, synack, 0)),
			back(tcpPkt(12*sec, A, 40002, E, 3741, syn, 0)),
			back(tcpPkt(50*sec, A, 40001, E, 3741, ack, 0)),
		},
	)
	rec, tab := run(t, testOptions(), pkts, 0)
	firsts := map[uint16]int64{}
	verdicts := map[uint16]string{}
	for _, r := range rec.finals {
		firsts[r.ClientPort] = r.First
		verdicts[r.ClientPort] = r.Verdict.String() + "/" + r.Reason.String()
	}
	if firsts[40001] != at(11*sec-time.Hour) || firsts[40002] != at(12*sec-time.Hour) {
		t.Errorf("first packets at %v and %v, want their own times %v and %v", time.Duration(firsts[40001]-t0), time.Duration(firsts[40002]-t0),
			11*sec-time.Hour, 12*sec-time.Hour)
	}
	if verdicts[40000] != "allowed/" || verdicts[40001] != "allowed/" || verdicts[40002] != "blocked/no_response" {
		t.Errorf("verdicts %v", verdicts)
	}
	if j := tab.Stats().ClockJumps; j != 0 {
		t.Errorf("%d clock jumps counted for a step the packets confirmed", j)
	}
}

// Gaps of seconds, minutes, hours and days (a sparse capture, files a day
// apart) change nothing: the packet after a gap is held only until the
// next one confirms it, then followed at its own time, in its order.
func TestGapsAreNotClockJumps(t *testing.T) {
	for _, gap := range []time.Duration{2 * sec, 10 * time.Minute, 26 * time.Hour, 400 * 24 * time.Hour} {
		pkts := cat(
			[]capture.Packet{tcpPkt(0, A, 40000, E, 3741, syn, 0)},
			handshake(A, 40001, E, 3741, gap),
			[]capture.Packet{
				tcpPkt(2*gap, A, 40001, E, 3741, pshack, 1),
				tcpPkt(3*gap, A, 40001, E, 3741, pshack, 1),
				tcpPkt(3*gap+ms, E, 3741, A, 40001, ack, 0),
			},
		)
		rec, tab := run(t, testOptions(), pkts, 3*gap+ms)
		want := "pending/"
		if gap >= 30*sec {
			want = "blocked/no_response"
		}
		for _, r := range rec.finals {
			switch r.ClientPort {
			case 40000:
				if got := r.Verdict.String() + "/" + r.Reason.String(); got != want || r.First != at(0) {
					t.Errorf("gap %v: the attempt before it is %s (first %v), want %s", gap, got, time.Duration(r.First-t0), want)
				}
			default:
				if r.Verdict != Allowed || r.First < at(gap) || r.Last > at(3*gap+ms) || r.First > at(3*gap) {
					t.Errorf("gap %v: %s first %v last %v", gap, describe(&r), time.Duration(r.First-t0), time.Duration(r.Last-t0))
				}
			}
		}
		if j := tab.Stats().ClockJumps; j != 0 {
			t.Errorf("gap %v: %d clock jumps", gap, j)
		}
	}
}

// The input's last packet is believed up to a day ahead (nothing can
// confirm it), and not past that.
func TestLastPacketAhead(t *testing.T) {
	for _, c := range []struct {
		ahead   time.Duration
		verdict string
		jumps   uint64
	}{
		{31 * sec, "blocked/no_response", 0},
		{tenYears, "pending/", 1},
	} {
		last := tcpPkt(c.ahead, X, 5000, Y, 80, syn, 0)
		rec, tab := run(t, testOptions(), []capture.Packet{tcpPkt(0, A, 40000, E, 3741, syn, 0), last}, c.ahead)
		r := rec.finals[0]
		if got := r.Verdict.String() + "/" + r.Reason.String(); got != c.verdict {
			t.Errorf("last packet %v ahead: the attempt before it is %s, want %s", c.ahead, got, c.verdict)
		}
		if j := tab.Stats().ClockJumps; j != c.jumps {
			t.Errorf("last packet %v ahead: %d clock jumps, want %d", c.ahead, j, c.jumps)
		}
		for _, r := range rec.finals {
			if r.Last > at(max(31*sec, min(c.ahead, 24*time.Hour))) {
				t.Errorf("last packet %v ahead: a flow ends at %v", c.ahead, time.Duration(r.Last-t0))
			}
		}
	}
}

// A live capture's idle moment confirms or denies a held packet as a
// packet would.
func TestIdleMomentJudgesAHeldPacket(t *testing.T) {
	rec := newRecorder(t)
	tab := NewTable(testOptions(), newFakeMatcher(), rec)
	for _, p := range handshake(A, 40000, E, 3741, 0) {
		tab.Process(&p)
	}
	rogue := tcpPkt(100*ms+tenYears, A, 40000, E, 3741, pshack, 1)
	tab.Process(&rogue)
	tab.Advance(at(300 * ms)) // the wall clock, 300 ms in
	if j := tab.Stats().ClockJumps; j != 1 {
		t.Errorf("%d clock jumps, want 1", j)
	}
	later := tcpPkt(5*sec, A, 40000, E, 3741, pshack, 1)
	tab.Process(&later)
	tab.Advance(at(5*sec + 200*ms))
	if tab.Stats().FlowsEnded != 0 {
		t.Errorf("the session ended: %v", rec.lines)
	}
}
