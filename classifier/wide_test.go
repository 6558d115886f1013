package classifier

import (
	"fmt"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

// TestRoleSetFitsEntry checks that every role survives the 16 bits an
// entry keeps a role set in.
func TestRoleSetFitsEntry(t *testing.T) {
	var all policy.RoleSet
	for _, name := range policy.RoleNames() {
		r, ok := policy.ParseRole(name)
		if !ok {
			t.Fatalf("role %q does not parse", name)
		}
		one := policy.RoleSet(0).With(r)
		if got := packRoles(one).set(); got != one {
			t.Errorf("role %s: %#x comes back as %#x", name, one, got)
		}
		all = all.With(r)
	}
	if got := packRoles(all).set(); got != all {
		t.Errorf("all roles %#x come back as %#x", all, got)
	}
}

// TestWideAddressNumbersReused ends IPv6 flows so that their addresses'
// numbers are given to other addresses, then sends packets of the old and
// new flows: each must reach its own flow, with its own addresses.
func TestWideAddressNumbersReused(t *testing.T) {
	opts := testOptions()
	rec := newRecorder(t)
	tab := NewTable(opts, newFakeMatcher(), rec)
	host := func(i int) string { return fmt.Sprintf("2001:db8:1::%x", i+16) }
	// Round 1: flows from hosts 0-99 to the v6 EM; all end (closed, then
	// the linger passes).
	ts := time.Duration(0)
	for round, base := range []int{0, 100} {
		for i := base; i < base+100; i++ {
			ts += time.Millisecond
			for _, p := range session(ts, host(i), uint16(40000+i), em6Addr, 3741) {
				tab.Process(&p)
			}
		}
		ts += time.Minute
		tab.Advance(at(ts))
		if tab.live != 0 {
			t.Fatalf("round %d: %d flows live after the linger", round, tab.live)
		}
		if n := len(tab.wide.ids); n != 0 {
			t.Fatalf("round %d: the pool holds %d addresses of no live flow", round, n)
		}
		checkIndex(t, tab)
	}
	// Round 3: two flows at once on recycled numbers, interleaved.
	a := tcpPkt(ts+time.Second, host(3), 5000, em6Addr, 3741, 0x02, 0)
	b := tcpPkt(ts+time.Second+1, host(203), 5000, em6Addr, 3741, 0x02, 0)
	tab.Process(&a)
	tab.Process(&b)
	if tab.live != 2 {
		t.Fatalf("%d flows live, want 2", tab.live)
	}
	if n := len(tab.wide.addrs); n > 101 {
		t.Errorf("the pool numbered %d addresses: numbers were not reused", n)
	}
	tab.Flush(at(ts + time.Hour))
	want := map[string]bool{
		"tcp " + host(3) + ":5000>" + em6Addr + ":3741":   true,
		"tcp " + host(203) + ":5000>" + em6Addr + ":3741": true,
	}
	last := rec.finals[len(rec.finals)-2:]
	for i := range last {
		if id := endpoints(&last[i]); !want[id] {
			t.Errorf("flow %s, want one of %v", id, want)
		}
	}
	if n := len(rec.finals); n != 202 {
		t.Errorf("%d flows ended, want 202", n)
	}
	if len(tab.wide.ids) != 0 || len(tab.wide.addrs) != 0 {
		t.Errorf("pool holds %d addresses after Flush", len(tab.wide.ids))
	}
}

// session is a whole TCP session: handshake, a request and its answer,
// and both FINs.
func session(ts time.Duration, cli string, cport uint16, srv string, sport uint16) []capture.Packet {
	us := time.Microsecond
	return []capture.Packet{
		tcpPkt(ts, cli, cport, srv, sport, 0x02, 0),
		tcpPkt(ts+us, srv, sport, cli, cport, 0x12, 0),
		tcpPkt(ts+2*us, cli, cport, srv, sport, 0x10, 0),
		tcpPkt(ts+3*us, cli, cport, srv, sport, 0x18, 100),
		tcpPkt(ts+4*us, srv, sport, cli, cport, 0x18, 50),
		tcpPkt(ts+5*us, cli, cport, srv, sport, 0x11, 0),
		tcpPkt(ts+6*us, srv, sport, cli, cport, 0x11, 0),
		tcpPkt(ts+7*us, cli, cport, srv, sport, 0x10, 0),
	}
}
