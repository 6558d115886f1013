package replay

import (
	"encoding/json"
	"slices"
	"strconv"
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

// Issue 17, #9, through a replay: a RST recorded 5 µs before the SYN it
// refuses is one refused flow, and a SYN whose first IPv4 fragment splits
// its TCP options is the SYN it carries.
func TestReplayReorderedAndFragmentedSYNs(t *testing.T) {
	const agent, tm, em = "198.51.100.21", "192.0.2.13", "192.0.2.10"
	us := time.Microsecond
	// 198.51.100.21.50010 > 192.0.2.10.3741 SYN, a 40-byte TCP header of
	// which the first fragment (MF, offset 0) holds 24 bytes.
	frag := ethFrame(t)
	frag = append(frag[:12:12], 0x08, 0x00,
		0x45, 0, 0, 44, 0x12, 0x34, 0x20, 0x00, 64, 6, 0, 0, 198, 51, 100, 21, 192, 0, 2, 10,
		0xc3, 0x5a, 0x0e, 0x9d, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0x20, 0x00, 0, 0, 0, 0, 0x02, 0x04, 0x05, 0xb4)
	pkts := []pkt{
		{0, false, tcpFrame(t, tm, agent, 10001, 50002, rstF|ackF, 0)},
		{5 * us, true, tcpFrame(t, agent, tm, 50002, 10001, synF, 0)},
		{time.Second, true, frag},
		{time.Second + 400*us, false, tcpFrame(t, em, agent, 3741, 50010, synF|ackF, 0)},
		{time.Minute, true, tcpFrame(t, agent, em, 50011, 3741, synF, 0)},
	}
	out, res := replayJSON(t, writePkts(t, t.TempDir(), "reordered.pcap", pkts))
	var got []string
	for _, f := range parseFlows(t, out) {
		if f.SrcPort == 50002 || f.SrcPort == 50010 || f.DstPort == 50002 {
			got = append(got, strconv.Itoa(f.SrcPort)+" "+f.Verdict+"/"+f.Reason)
		}
	}
	if want := []string{"50002 blocked/refused", "50010 allowed/"}; !slices.Equal(got, want) {
		t.Errorf("flows %q, want %q:\n%s", got, want, out)
	}
	if res.Counts.Malformed != 0 {
		t.Errorf("%d malformed packets", res.Counts.Malformed)
	}
}
