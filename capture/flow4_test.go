package capture

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// flow4Disagreement says how DecodeFlow4 and Decode differ on one frame of
// link type link, or "" when they agree: a frame DecodeFlow4 accepts must
// be one Decode decodes, to the same fields.
func flow4Disagreement(link LinkType, data []byte) (accepted bool, why string) {
	var f Flow4
	if link != LinkEthernet || !DecodeFlow4(data, &f) {
		return false, ""
	}
	var p Packet
	if st := Decode(link, data, &p); st != StatusOK {
		return true, fmt.Sprintf("accepted, but Decode says %v", st)
	}
	want := Packet{
		IPVersion: 4, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort,
		TCPFlags: f.TCPFlags, PayloadLen: f.PayloadLen, PayloadOff: f.PayloadOff, Seq: f.Seq,
	}
	mapIPv4(&want.Src, binary.BigEndian.AppendUint32(nil, f.Src))
	mapIPv4(&want.Dst, binary.BigEndian.AppendUint32(nil, f.Dst))
	if p != want {
		return true, fmt.Sprintf("DecodeFlow4 gives %+v, Decode %+v", want, p)
	}
	return true, ""
}

func TestDecodeFlow4IsDecode(t *testing.T) {
	accepted := 0
	check := func(where string, link LinkType, data []byte) {
		t.Helper()
		ok, why := flow4Disagreement(link, data)
		if why != "" {
			t.Errorf("%s: %s", where, why)
		}
		if ok {
			accepted++
		}
	}
	for _, tt := range decodeTests {
		check(tt.name, tt.link, mustHex(t, tt.hex))
	}
	corpus := testenv.Corpus(t)
	for _, e := range readManifest(t, corpus) {
		r, err := OpenFile(filepath.Join(corpus, e.path))
		if err != nil {
			continue
		}
		var rec Record
		for n := 1; r.Next(&rec) == nil; n++ {
			check(fmt.Sprintf("%s record %d", e.path, n), rec.Link, rec.Data)
		}
		r.Close()
	}
	if accepted < 10000 {
		t.Errorf("DecodeFlow4 accepted only %d frames: the comparison tests little", accepted)
	}
	t.Logf("DecodeFlow4 agreed with Decode on the %d frames it accepted", accepted)
}

// TestDecodeFlow4OnDamagedHeaders changes every header byte of a TCP and
// a UDP frame, to each of a spread of values, and cuts the frames short
// at every length: DecodeFlow4 must refuse or agree with Decode every
// time, and refuse what Decode does not decode.
func TestDecodeFlow4OnDamagedHeaders(t *testing.T) {
	frames := map[string][]byte{"tcp": mustHex(t, hexEthIPv4TCPPush), "udp": ethIPv4UDP(5, 12), "udp, ip options, no payload": ethIPv4UDP(6, 0)}
	for name, frame := range frames {
		if ok, why := flow4Disagreement(LinkEthernet, frame); !ok || why != "" {
			t.Fatalf("the %s frame to damage is not one DecodeFlow4 takes (%s)", name, why)
		}
	}
	values := []byte{0x00, 0x01, 0x04, 0x05, 0x06, 0x0f, 0x11, 0x20, 0x3f, 0x40, 0x45, 0x46, 0x4f, 0x50, 0x7f, 0x80, 0xf0, 0xff}
	for proto, frame := range frames {
		hdr := min(len(frame), ethernetHdrLen+60+tcpMinHdrLen)
		for i := range hdr {
			for _, v := range values {
				d := append([]byte(nil), frame...)
				d[i] = v
				if _, why := flow4Disagreement(LinkEthernet, d); why != "" {
					t.Errorf("proto %s, byte %d set to %#x: %s", proto, i, v, why)
				}
			}
		}
		for n := range len(frame) {
			if _, why := flow4Disagreement(LinkEthernet, frame[:n]); why != "" {
				t.Errorf("proto %s cut to %d bytes: %s", proto, n, why)
			}
		}
	}
}

// ethIPv4UDP is an Ethernet frame carrying a UDP datagram of payload bytes
// from 192.0.2.10:5353 to 192.0.2.11:10001 in an IPv4 header of ihl words.
func ethIPv4UDP(ihl, payload int) []byte {
	ip := make([]byte, ihl*4+udpHdrLen+payload)
	ip[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8], ip[9] = 64, ProtoUDP
	copy(ip[12:], []byte{192, 0, 2, 10, 192, 0, 2, 11})
	udp := ip[ihl*4:]
	binary.BigEndian.PutUint16(udp, 5353)
	binary.BigEndian.PutUint16(udp[2:], 10001)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpHdrLen+payload))
	frame := make([]byte, ethernetHdrLen, ethernetHdrLen+len(ip))
	binary.BigEndian.PutUint16(frame[12:], etherTypeIPv4)
	return append(frame, ip...)
}
