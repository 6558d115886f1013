//go:build cgo

package live

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/internal/testenv"
)

// needCaptureRights skips a live-capture test where it cannot run, except
// under CI, where a missing right is a broken set-up and must fail.
func needCaptureRights(t *testing.T) {
	t.Helper()
	testenv.Root(t, "live capture")
}

// freeUDPPort returns a UDP port nothing listens on now, by binding port 0 and
// closing it.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return port
}

func TestLiveLoopbackUDP(t *testing.T) {
	needCaptureRights(t)
	port := freeUDPPort(t)
	live, err := Open("lo", Options{BPF: "udp dst port " + strconv.Itoa(port), ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	defer live.Close()

	// Something must listen, or the kernel answers each datagram with an
	// ICMP port unreachable (harmless, but not what this test reads).
	srv, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.Dial("udp4", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const sent = 20
	payload := []byte("tpwatch live capture test")
	before := time.Now().UnixNano()
	for range sent {
		if _, err := cli.Write(payload); err != nil {
			t.Fatal(err)
		}
	}

	var (
		rec      capture.Record
		pkt      capture.Packet
		got      int
		idles    int
		deadline = time.Now().Add(5 * time.Second)
	)
	for got < sent && time.Now().Before(deadline) {
		err := live.Next(&rec)
		var idle *capture.Idle
		if errors.As(err, &idle) {
			idles++
			if idle.Now < before {
				t.Errorf("Idle.Now %d is before the test started (%d)", idle.Now, before)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if rec.Link != live.Link() || int(rec.CapLen) != len(rec.Data) || rec.WireLen < rec.CapLen {
			t.Fatalf("record link %v caplen %d len(data) %d wirelen %d", rec.Link, rec.CapLen, len(rec.Data), rec.WireLen)
		}
		if rec.TS < before-int64(time.Second) || rec.TS > time.Now().UnixNano()+int64(time.Second) {
			t.Errorf("record time %d is not about now", rec.TS)
		}
		if st := capture.Decode(rec.Link, rec.Data, &pkt); st != capture.StatusOK {
			t.Fatalf("Decode of a loopback UDP packet: %v", st)
		}
		if pkt.Proto != capture.ProtoUDP || int(pkt.DstPort) != port || pkt.PayloadLen != uint32(len(payload)) {
			t.Fatalf("decoded proto %d dst port %d payload %d; want udp %d %d", pkt.Proto, pkt.DstPort, pkt.PayloadLen, port, len(payload))
		}
		if pkt.Dst != [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1} {
			t.Fatalf("decoded destination %v, want 127.0.0.1", pkt.Dst)
		}
		got++
	}
	if got != sent {
		t.Fatalf("read %d of %d datagrams (%d read timeouts)", got, sent, idles)
	}

	// Nothing more matches the filter: the next reads time out as Idle.
	err = live.Next(&rec)
	var idle *capture.Idle
	if !errors.As(err, &idle) {
		t.Fatalf("Next on a quiet filter: %v, want *Idle", err)
	}
	st, err := live.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Received < sent || st.KernelDrops != 0 {
		t.Errorf("Stats: received %d, kernel drops %d; want >= %d and 0", st.Received, st.KernelDrops, sent)
	}
}

// TestLiveNextAllocs reads packets already waiting in the ring: Next must
// not allocate for a packet (an Idle on a timeout may).
func TestLiveNextAllocs(t *testing.T) {
	needCaptureRights(t)
	port := freeUDPPort(t)
	live, err := Open("lo", Options{BPF: "udp dst port " + strconv.Itoa(port)})
	if err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	defer live.Close()
	srv, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.Dial("udp4", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const runs = 100
	for range runs + 10 {
		if _, err := cli.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	var (
		rec    capture.Record
		failed error
	)
	allocs := testing.AllocsPerRun(runs, func() {
		if err := live.Next(&rec); err != nil && failed == nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatalf("Next: %v (the datagrams sent were not all waiting)", failed)
	}
	if allocs != 0 {
		t.Errorf("Next allocates %.1f times per packet, want 0", allocs)
	}
}

func TestOpenLiveErrors(t *testing.T) {
	needCaptureRights(t)
	if _, err := Open("tpwatch-no-such-if0", Options{}); err == nil {
		t.Error("OpenLive of a missing interface succeeded")
	}
	_, err := Open("lo", Options{BPF: "udp port and nonsense"})
	if err == nil {
		t.Fatal("OpenLive with a bad filter succeeded")
	}
	if want := "udp port and nonsense"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not quote the filter", err)
	}
}

// TestLiveSetFilter changes the filter of an open capture: datagrams to
// the old port stop, those to the new one come, and a bad filter is
// refused while the old one stays.
func TestLiveSetFilter(t *testing.T) {
	needCaptureRights(t)
	oldPort, newPort := freeUDPPort(t), freeUDPPort(t)
	for newPort == oldPort {
		newPort = freeUDPPort(t)
	}
	live, err := Open("lo", Options{BPF: "udp dst port " + strconv.Itoa(oldPort), ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	defer live.Close()
	if err := live.SetFilter("udp dst port and nonsense"); err == nil {
		t.Fatal("SetFilter accepted a bad filter")
	}
	if err := live.SetFilter("udp dst port " + strconv.Itoa(newPort)); err != nil {
		t.Fatalf("SetFilter: %v", err)
	}
	var rec capture.Record
	// The first Next applies the new filter; it times out on a quiet port.
	if err := live.Next(&rec); err != nil {
		var idle *capture.Idle
		if !errors.As(err, &idle) {
			t.Fatalf("Next: %v", err)
		}
	}
	send := func(port int) {
		c, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("x"))
	}
	send(oldPort)
	send(newPort)
	var pkt capture.Packet
	ports := map[uint16]int{}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		err := live.Next(&rec)
		if err != nil {
			continue
		}
		if capture.Decode(rec.Link, rec.Data, &pkt) == capture.StatusOK && pkt.Proto == capture.ProtoUDP {
			ports[pkt.DstPort]++
		}
	}
	if ports[uint16(newPort)] != 1 || ports[uint16(oldPort)] != 0 {
		t.Errorf("after SetFilter captured %v, want one datagram to %d and none to %d", ports, newPort, oldPort)
	}
}

// TestCheckFilterOnEveryLink compiles a filter for each link type a live
// capture reports: raw IP (a tun or WireGuard interface) is LINKTYPE_RAW
// in tpwatch and DLT_RAW to libpcap, which knows no DLT 101.
func TestCheckFilterOnEveryLink(t *testing.T) {
	for _, link := range []capture.LinkType{capture.LinkEthernet, capture.LinkLinuxSLL, capture.LinkRaw, capture.LinkNull, capture.LinkLoop} {
		if err := CheckFilter("tcp or udp or ip proto 47", link, Options{}); err != nil {
			t.Errorf("%v: %v", link, err)
		}
	}
	if err := CheckFilter("tcp port", capture.LinkRaw, Options{}); !errors.Is(err, ErrBadFilter) {
		t.Errorf("a bad filter on raw IP: %v, want ErrBadFilter", err)
	}
}
