package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

const benchPackets = 100000

func benchPcap(b *testing.B) []byte {
	return buildPcap(binary.LittleEndian, pcapMagicNano, 1, 65535, manyRecords(mustHex(b, hexEthIPv4TCPSyn), benchPackets))
}

func benchPcapng(b *testing.B) []byte {
	frame := mustHex(b, hexEthIPv4TCPSyn)
	w := (&ngBuilder{order: binary.LittleEndian}).shb(1).idb(1, 0)
	for i := range benchPackets {
		w.epb(0, uint64(i), 0, frame)
	}
	return w.bytes()
}

// benchRead reads (and optionally decodes) the whole capture b.N times
// over; one op is one packet.
func benchRead(b *testing.B, file []byte, decode bool) {
	b.ReportAllocs()
	b.SetBytes(int64(len(file) / benchPackets))
	src := bytes.NewReader(file)
	r, err := NewReader(src, "bench")
	if err != nil {
		b.Fatal(err)
	}
	var rec Record
	var p Packet
	b.ResetTimer()
	for range b.N {
		if err := r.Next(&rec); err != nil {
			if err != io.EOF {
				b.Fatal(err)
			}
			src.Reset(file)
			if r, err = NewReader(src, "bench"); err != nil {
				b.Fatal(err)
			}
			if err := r.Next(&rec); err != nil {
				b.Fatal(err)
			}
		}
		if decode {
			p.TS, p.WireLen = rec.TS, rec.WireLen
			if Decode(rec.Link, rec.Data, &p) != StatusOK {
				b.Fatal("decode failed")
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

func BenchmarkReadPcap(b *testing.B)   { benchRead(b, benchPcap(b), false) }
func BenchmarkReadPcapng(b *testing.B) { benchRead(b, benchPcapng(b), false) }
func BenchmarkReadDecode(b *testing.B) { benchRead(b, benchPcap(b), true) }

func benchDecode(b *testing.B, link LinkType, hex string) {
	data := mustHex(b, hex)
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for range b.N {
		if Decode(link, data, &p) != StatusOK {
			b.Fatal("decode failed")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

func BenchmarkDecodeTCP4(b *testing.B) { benchDecode(b, LinkEthernet, hexEthIPv4TCPSyn) }
func BenchmarkDecodeVLANTCP6(b *testing.B) {
	benchDecode(b, LinkEthernet, hexEthVLANIPv6TCPSynAck)
}

func BenchmarkDecodeUDP4(b *testing.B) { benchDecode(b, LinkRaw, hexIPv4UDP) }

// BenchmarkDecodeFlow4UDP is the reading goroutine's short way for an
// untagged Ethernet IPv4 UDP frame.
func BenchmarkDecodeFlow4UDP(b *testing.B) {
	data := ethIPv4UDP(5, 12)
	var f Flow4
	b.ReportAllocs()
	for range b.N {
		if !DecodeFlow4(data, &f) {
			b.Fatal("refused")
		}
	}
}

func benchDecodeFrame(b *testing.B, link LinkType, data []byte, tunnels uint8) {
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for range b.N {
		if Decode(link, data, &p) != StatusOK || p.Tunnels != tunnels {
			b.Fatal("decode failed")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

func BenchmarkDecodeVXLAN(b *testing.B) { benchDecodeFrame(b, LinkEthernet, hx(hexVXLANICMP), 1) }
func BenchmarkDecodeERSPAN3(b *testing.B) {
	benchDecodeFrame(b, LinkEthernet, tunnelFrame(b, "erspan type III with the platform subheader"), 1)
}
func BenchmarkDecodeGeneveInVXLAN(b *testing.B) {
	benchDecodeFrame(b, LinkEthernet, hx(hexGeneveVXLANDNS), 2)
}
