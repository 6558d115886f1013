package classifier

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
)

// trafficWithGaps is randomTraffic with, every 700 packets, a jump of more
// than an hour of packet time, so that due times are rebased often and
// long idle timeouts are clamped.
func trafficWithGaps(seed uint64, n int) []capture.Packet {
	pkts := randomTraffic(seed, n)
	var shift int64
	for i := range pkts {
		if i%700 == 699 {
			shift += int64(61 * time.Minute)
		}
		pkts[i].TS += shift
	}
	return pkts
}

// checkDue fails unless every live entry's stored due time is at or before
// its real next deadline: the sweep would otherwise pass over a flow whose
// time has come.
func checkDue(t *testing.T, tab *Table, step int) {
	t.Helper()
	for i := range tab.entries[:tab.live] {
		want := min(max(tab.nextDue(uint32(i))>>dueShift-tab.dueBase, 0), math.MaxUint16)
		if got := int64(tab.due[i]); got > want {
			t.Fatalf("packet %d: entry %d due at unit %d, stored %d: after its deadline", step, i, want, got)
		}
	}
}

func TestDueIsALowerBound(t *testing.T) {
	opts := testOptions()
	opts.InitialFlows, opts.MaxFlows = 8, 256 // growth and eviction move due times too
	pkts := trafficWithGaps(11, 6000)
	tab := NewTable(opts, newFakeMatcher(), newRecorder(t))
	rebases := 0
	for i := range pkts {
		base := tab.dueBase
		tab.Process(&pkts[i])
		if tab.dueBase != base {
			rebases++
		}
		checkDue(t, tab, i)
		if i%1000 == 999 {
			tab.Advance(pkts[i].TS + int64(2*time.Second))
			checkDue(t, tab, i)
		}
	}
	if rebases < 5 {
		t.Errorf("%d rebases: the traffic does not test them", rebases)
	}
}

// TestSkippingDueEntriesChangesNothing compares, call by call, the sink of a
// table with a table whose sweep is made to settle every entry it visits
// (every due time reset to 0 before each packet), as it did before due
// times existed.
func TestSkippingDueEntriesChangesNothing(t *testing.T) {
	for _, initial := range []int{16, 4096} { // a small table, and one swept by time only
		opts := testOptions()
		opts.InitialFlows, opts.MaxFlows = initial, 4096
		pkts := trafficWithGaps(5, 8000)
		fast := newRecorder(t)
		slow := newRecorder(t)
		ft := NewTable(opts, newFakeMatcher(), fast)
		st := NewTable(opts, newFakeMatcher(), slow)
		skipped := 0
		for i := range pkts {
			for j := range st.live {
				if st.due[j] > 0 {
					skipped++
				}
			}
			clear(st.due[:st.live])
			ft.Process(&pkts[i])
			st.Process(&pkts[i])
		}
		end := pkts[len(pkts)-1].TS + int64(time.Hour)
		ft.Flush(end)
		st.Flush(end)
		if skipped == 0 {
			t.Fatalf("initial %d: no entry was ever not due: nothing compared", initial)
		}
		if len(fast.lines) < 1000 {
			t.Fatalf("initial %d: only %d sink calls", initial, len(fast.lines))
		}
		if !slices.Equal(fast.lines, slow.lines) {
			for i := range min(len(fast.lines), len(slow.lines)) {
				if fast.lines[i] != slow.lines[i] {
					t.Fatalf("initial %d: call %d differs:\n skipping: %s\n settling: %s", initial, i, fast.lines[i], slow.lines[i])
				}
			}
			t.Fatalf("initial %d: %d calls skipping, %d settling", initial, len(fast.lines), len(slow.lines))
		}
	}
}
