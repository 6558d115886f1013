package replay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/rs/zerolog"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/policy"
)

const mergeSite = `roles:
  enterprise-manager: [192.0.2.10]
  sql-server: [192.0.2.11]
  threat-manager: [192.0.2.13]
  agent: [198.51.100.0/24]
`

// pkt is one packet of a test capture: its time after t0, whether the
// flow's client sent it, and the frame.
type pkt struct {
	at         time.Duration
	fromClient bool
	data       []byte
}

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

const (
	synF = 1 << iota
	ackF
	rstF
	finF
)

func tcpFrame(t *testing.T, src, dst string, sport, dport uint16, flags int, payload int) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Window: 1024,
		SYN: flags&synF != 0, ACK: flags&ackF != 0, RST: flags&rstF != 0, FIN: flags&finF != 0}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return ethFrame(t, ip, tcp, gopacket.Payload(make([]byte, payload)))
}

func udpFrame(t *testing.T, src, dst string, sport, dport uint16, payload int) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return ethFrame(t, ip, udp, gopacket.Payload(make([]byte, payload)))
}

func ethFrame(t *testing.T, l ...gopacket.SerializableLayer) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, l...)...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// writePkts writes the packets to a classic pcap file (nanosecond
// timestamps) in dir.
func writePkts(t *testing.T, dir, name string, pkts []pkt) string {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriterNanos(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(p.at), CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// conversation is a capture of a SQL Server Browser request and its reply
// (UDP 1434), a SYN refused by the Threat Manager, a working agent
// session, and, a minute later, another session: longer than every
// attempt timeout, so that a reply read after the rest of the capture
// comes too late.
func conversation(t *testing.T) []pkt {
	const em, sql, tm, agent = "192.0.2.10", "192.0.2.11", "192.0.2.13", "198.51.100.21"
	us := time.Microsecond
	return []pkt{
		{0, true, udpFrame(t, em, sql, 50001, 1434, 3)},
		{400 * us, false, udpFrame(t, sql, em, 1434, 50001, 90)},
		{1000 * us, true, tcpFrame(t, agent, tm, 50002, 10001, synF, 0)},
		{1200 * us, false, tcpFrame(t, tm, agent, 10001, 50002, rstF|ackF, 0)},
		{2000 * us, true, tcpFrame(t, agent, em, 50003, 3741, synF, 0)},
		{2400 * us, false, tcpFrame(t, em, agent, 3741, 50003, synF|ackF, 0)},
		{2800 * us, true, tcpFrame(t, agent, em, 50003, 3741, ackF, 0)},
		{3000 * us, true, tcpFrame(t, agent, em, 50003, 3741, ackF, 100)},
		{3400 * us, false, tcpFrame(t, em, agent, 3741, 50003, ackF, 200)},
		{4000 * us, true, tcpFrame(t, agent, em, 50003, 3741, finF|ackF, 0)},
		{4400 * us, false, tcpFrame(t, em, agent, 3741, 50003, finF|ackF, 0)},
		{4800 * us, true, tcpFrame(t, agent, em, 50003, 3741, ackF, 0)},
		{time.Minute, true, tcpFrame(t, agent, em, 50004, 3741, synF, 0)},
		{time.Minute + 400*us, false, tcpFrame(t, em, agent, 3741, 50004, synF|ackF, 0)},
		{time.Minute + 800*us, true, tcpFrame(t, agent, em, 50004, 3741, ackF, 0)},
	}
}

func replayJSON(t *testing.T, files ...string) (string, *Result) {
	t.Helper()
	c, err := policy.ParseConfig([]byte(mergeSite), "site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := policy.DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(m, c)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Policy: pol, ConfigName: "site.yaml", Files: files, JSON: &out, All: true, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), res
}

// Issue 17, #2: several files were read one after another in the order of
// their first packet, so a capture split by direction turned the UDP 1434
// reply into no_response and the refused SYN into no_response. They are
// merged by packet time, as mergecap does: the split capture gives the
// very JSON of the whole one, whatever order the files are given in.
func TestSplitByDirectionMergesAsOne(t *testing.T) {
	dir := t.TempDir()
	all := conversation(t)
	var toServer, toClient []pkt
	for _, p := range all {
		if p.fromClient {
			toServer = append(toServer, p)
		} else {
			toClient = append(toClient, p)
		}
	}
	whole := writePkts(t, dir, "whole.pcap", all)
	out := writePkts(t, dir, "out.pcap", toServer)
	in := writePkts(t, dir, "in.pcap", toClient)

	want, _ := replayJSON(t, whole)
	for _, flow := range []string{`"dst_port":1434,"src_roles":["enterprise-manager"],"dst_roles":["sql-server"],"rule":"em-sql-browser","verdict":"allowed"`,
		`"dst_port":10001,"src_roles":["agent"],"dst_roles":["threat-manager"],"rule":"agent-tm-tcp","verdict":"blocked","reason":"refused"`} {
		if !strings.Contains(want, flow) {
			t.Fatalf("the whole capture lacks %s:\n%s", flow, want)
		}
	}
	for _, files := range [][]string{{out, in}, {in, out}} {
		got, res := replayJSON(t, files...)
		if got != want {
			t.Errorf("split by direction, files %v:\n%s\nwant, as from the whole capture:\n%s", files, got, want)
		}
		if len(res.ReadErrors) > 0 {
			t.Errorf("read errors: %v", res.ReadErrors)
		}
		if res.Counts.Records != uint64(len(all)) {
			t.Errorf("%d records read, want %d", res.Counts.Records, len(all))
		}
	}
}

// A capture split by interface (each flow on its own, packets of the two
// files interleaved in time) is one capture too.
func TestSplitByInterfaceMergesAsOne(t *testing.T) {
	dir := t.TempDir()
	all := conversation(t)
	var a, b []pkt
	for i, p := range all {
		// The UDP flow and the session on one, the others on the other.
		if i < 2 || i >= 4 && i < 12 {
			a = append(a, p)
		} else {
			b = append(b, p)
		}
	}
	want, _ := replayJSON(t, writePkts(t, dir, "whole.pcap", all))
	got, _ := replayJSON(t, writePkts(t, dir, "eth1.pcap", b), writePkts(t, dir, "eth0.pcap", a))
	if got != want {
		t.Errorf("split by interface:\n%s\nwant:\n%s", got, want)
	}
}

// A file that stops early leaves the merge with what it gave: the others
// are read to their end, and the error names the file and where it
// stopped.
func TestMergeReportsEachFilesError(t *testing.T) {
	dir := t.TempDir()
	all := conversation(t)
	good := writePkts(t, dir, "good.pcap", all[:4])
	cut := writePkts(t, dir, "cut.pcap", all[4:])
	data, err := os.ReadFile(cut)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, data[:len(data)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pcap")
	out, res := replayJSON(t, cut, missing, good)
	if len(res.ReadErrors) != 2 {
		t.Fatalf("read errors %v, want two: the cut file's and the missing one's", res.ReadErrors)
	}
	var msgs []string
	for _, err := range res.ReadErrors {
		msgs = append(msgs, err.Error())
	}
	joined := strings.Join(msgs, "\n")
	if !strings.Contains(joined, "cut.pcap: record 11") || !strings.Contains(joined, "the 10 packets before it were classified") || !strings.Contains(joined, "missing.pcap") {
		t.Errorf("the errors do not say which file stopped where:\n%s", joined)
	}
	var cutErr *capture.ReadError
	if !errors.As(res.ReadErrors[0], &cutErr) && !errors.As(res.ReadErrors[1], &cutErr) {
		t.Errorf("no *capture.ReadError among %v", res.ReadErrors)
	}
	for _, want := range []string{`"reason":"refused"`, `"rule":"em-sql-browser","verdict":"allowed"`, `"dst_port":3741`} {
		if !strings.Contains(out, want) {
			t.Errorf("what could be read was not reported (%s):\n%s", want, out)
		}
	}
}

// Files that follow one another (a ring buffer) are opened one at a time,
// whatever order they are given in.
func TestMergeOpensFilesWhenTheirTimeComes(t *testing.T) {
	dir := t.TempDir()
	const n = 50
	var files []string
	for i := range n {
		at := time.Duration(i) * time.Second
		files = append(files, writePkts(t, dir, "ring"+string(rune('a'+i%26))+string(rune('a'+i/26))+".pcap", []pkt{
			{at, true, udpFrame(t, "192.0.2.10", "192.0.2.11", 50000+uint16(i), 1434, 3)},
			{at + time.Millisecond, false, udpFrame(t, "192.0.2.11", "192.0.2.10", 1434, 50000+uint16(i), 90)},
		}))
	}
	// Given backwards.
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	m := newMerged(files)
	var rec capture.Record
	last, count := int64(0), 0
	for {
		err := m.Next(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.TS < last {
			t.Fatalf("record %d at %d after one at %d", count, rec.TS, last)
		}
		last = rec.TS
		count++
	}
	m.Close()
	if count != 2*n {
		t.Errorf("%d records, want %d", count, 2*n)
	}
	if m.mostOpen > 1 {
		t.Errorf("%d files open at once, want 1", m.mostOpen)
	}
	if errs := m.errs(); len(errs) > 0 {
		t.Errorf("errors %v", errs)
	}
}

// The merge allocates nothing per record.
func TestMergeAllocatesNothing(t *testing.T) {
	dir := t.TempDir()
	var a, b []pkt
	frame := udpFrame(t, "192.0.2.10", "192.0.2.11", 50000, 1434, 3)
	for i := range 3000 {
		p := pkt{time.Duration(i) * time.Millisecond, true, frame}
		if i%3 == 0 {
			b = append(b, p)
		} else {
			a = append(a, p)
		}
	}
	m := newMerged([]string{writePkts(t, dir, "a.pcap", a), writePkts(t, dir, "b.pcap", b)})
	defer m.Close()
	var rec capture.Record
	for range 100 { // the readers' buffers fill
		if err := m.Next(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if allocs := testing.AllocsPerRun(2000, func() {
		if err := m.Next(&rec); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per record", allocs)
	}
}
