package replay

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type jsonFlow struct {
	TSFirst time.Time `json:"ts_first"`
	TSLast  time.Time `json:"ts_last"`
	SrcPort int       `json:"src_port"`
	DstPort int       `json:"dst_port"`
	Verdict string    `json:"verdict"`
	Reason  string    `json:"reason"`
}

func parseFlows(t *testing.T, out string) []jsonFlow {
	t.Helper()
	var flows []jsonFlow
	for line := range strings.Lines(out) {
		var f jsonFlow
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		flows = append(flows, f)
	}
	return flows
}

// Issue 17, #7, through a replay: one packet of a working session stamped
// ten years ahead reported the session twice, left a later attempt
// pending and stamped flows from the future. Now the capture reads as if
// that packet were on time, and the jump is counted.
func TestReplayOneRogueTimestamp(t *testing.T) {
	const agent, em = "198.51.100.21", "192.0.2.10"
	us := time.Microsecond
	pkts := conversation(t)
	// A data segment of the working session, ten years ahead.
	rogue := pkt{3200*us + 10*365*24*time.Hour, true, tcpFrame(t, agent, em, 50003, 3741, ackF, 50)}
	pkts = append(pkts[:9], append([]pkt{rogue}, pkts[9:]...)...)
	// An attempt after it that nothing answers, which the capture outlives.
	pkts = append(pkts[:13], append([]pkt{{5 * time.Second, true, tcpFrame(t, agent, em, 50005, 3741, synF, 0)}}, pkts[13:]...)...)
	out, res := replayJSON(t, writePkts(t, t.TempDir(), "rogue.pcap", pkts))
	end := t0.Add(time.Minute + time.Second)
	seen := map[int]int{}
	for _, f := range parseFlows(t, out) {
		seen[f.SrcPort]++
		if f.TSFirst.After(end) || f.TSLast.After(end) {
			t.Errorf("a flow from the future: %+v", f)
		}
		switch f.SrcPort {
		case 50003:
			if f.Verdict != "allowed" {
				t.Errorf("the session is %s/%s", f.Verdict, f.Reason)
			}
		case 50005:
			if f.Verdict != "blocked" || f.Reason != "no_response" {
				t.Errorf("the attempt after the rogue packet is %s/%s, want blocked/no_response", f.Verdict, f.Reason)
			}
		}
	}
	for port, n := range seen {
		if n != 1 {
			t.Errorf("the flow from port %d reported %d times", port, n)
		}
	}
	if seen[50005] != 1 {
		t.Errorf("the attempt after the rogue packet was not reported:\n%s", out)
	}
	if res.Table.ClockJumps != 1 {
		t.Errorf("%d clock jumps counted, want 1", res.Table.ClockJumps)
	}
}

// A capture whose clock steps back an hour: the flows after the step
// carry the times of their own first packets, not the time before the
// step, and their attempts are timed in the stepped clock.
func TestReplayClockStepsBack(t *testing.T) {
	const agent, em = "198.51.100.21", "192.0.2.10"
	pkts := conversation(t)[:12] // the first 5 ms of it
	back := func(d time.Duration) time.Duration { return d - time.Hour }
	pkts = append(pkts,
		pkt{back(10 * time.Second), true, tcpFrame(t, agent, em, 50006, 3741, synF, 0)},
		pkt{back(10*time.Second + time.Millisecond), false, tcpFrame(t, em, agent, 3741, 50006, synF|ackF, 0)},
		pkt{back(11 * time.Second), true, tcpFrame(t, agent, em, 50007, 3741, synF, 0)},
		pkt{back(50 * time.Second), true, tcpFrame(t, agent, em, 50006, 3741, ackF, 10)},
		pkt{back(50*time.Second + time.Millisecond), false, tcpFrame(t, em, agent, 3741, 50006, ackF, 0)},
	)
	out, res := replayJSON(t, writePkts(t, t.TempDir(), "back.pcap", pkts))
	found := 0
	for _, f := range parseFlows(t, out) {
		switch f.SrcPort {
		case 50006:
			found++
			if want := t0.Add(back(10 * time.Second)); !f.TSFirst.Equal(want) || f.Verdict != "allowed" {
				t.Errorf("the session after the step: first %v, %s; want first %v, allowed", f.TSFirst, f.Verdict, want)
			}
		case 50007:
			found++
			if want := t0.Add(back(11 * time.Second)); !f.TSFirst.Equal(want) || f.Verdict != "blocked" || f.Reason != "no_response" {
				t.Errorf("the attempt after the step: first %v, %s/%s; want first %v, blocked/no_response", f.TSFirst, f.Verdict, f.Reason, want)
			}
		}
	}
	if found != 2 {
		t.Errorf("the flows after the step are missing:\n%s", out)
	}
	if res.Table.ClockJumps != 0 {
		t.Errorf("%d clock jumps counted for a step the packets confirmed", res.Table.ClockJumps)
	}
}
