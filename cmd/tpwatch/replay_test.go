package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// tcpPacket builds one Ethernet/IPv4/TCP frame.
func tcpPacket(t *testing.T, src, dst string, sport, dport uint16, syn, ack, rst bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: syn, ACK: ack, RST: rst, Window: 1024}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writePcap writes frames one second apart with the given link type.
func writePcap(t *testing.T, link layers.LinkType, frames ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Second), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "test.pcap")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseNDJSON(t *testing.T, out string) []map[string]any {
	t.Helper()
	var flows []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		flows = append(flows, m)
	}
	return flows
}

const siteYAML = "roles:\n  enterprise-manager: [192.0.2.10]\n  agent: [198.51.100.0/24]\n"

func TestReplayAllowedAndRefused(t *testing.T) {
	cfg := writeFile(t, "site.yaml", siteYAML)
	capFile := writePcap(t, layers.LinkTypeEthernet,
		tcpPacket(t, "198.51.100.7", "192.0.2.10", 50000, 3741, true, false, false),
		tcpPacket(t, "192.0.2.10", "198.51.100.7", 3741, 50000, true, true, false),
		tcpPacket(t, "198.51.100.7", "192.0.2.10", 50000, 3741, false, true, false),
		tcpPacket(t, "198.51.100.8", "192.0.2.10", 50001, 3741, true, false, false),
		tcpPacket(t, "192.0.2.10", "198.51.100.8", 3741, 50001, false, true, true),
	)
	out, stderr, status := tpwatch(t, "replay", "--config", cfg, "--format", "json", capFile)
	if status != exitProblems {
		t.Fatalf("status %d, want 1 (a blocked flow); stderr %s", status, stderr)
	}
	flows := parseNDJSON(t, out)
	if len(flows) != 2 {
		t.Fatalf("%d flows, want 2: %s", len(flows), out)
	}
	byClient := map[string]map[string]any{}
	for _, f := range flows {
		byClient[f["src_ip"].(string)] = f
	}
	ok := byClient["198.51.100.7"]
	if ok["verdict"] != "allowed" || ok["rule"] != "agent-em-grpc" || ok["dst_port"] != 3741.0 || ok["conn_state"] != "S1" {
		t.Errorf("allowed flow wrong: %v", ok)
	}
	bad := byClient["198.51.100.8"]
	if bad["verdict"] != "blocked" || bad["reason"] != "refused" || bad["conn_state"] != "REJ" {
		t.Errorf("refused flow wrong: %v", bad)
	}
	for _, k := range []string{"ts_first", "ts_last", "transport", "src_port", "dst_ip", "src_roles", "dst_roles", "history", "packets_out", "packets_in", "bytes_out", "bytes_in"} {
		if _, present := ok[k]; !present {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if ts, _ := ok["ts_first"].(string); ts != "2026-01-05T09:00:00.000000000Z" {
		t.Errorf("ts_first %q, want RFC 3339 with nanoseconds", ts)
	}

	// The table report names the blocked rule first.
	out, _, status = tpwatch(t, "replay", "--config", cfg, "--format", "table", capFile)
	if status != exitProblems {
		t.Fatalf("table status %d", status)
	}
	if !strings.Contains(out, "BLOCKED") || !strings.Contains(out, "agent-em-grpc") || !strings.Contains(out, "REFUSED: the server answered with a reset") {
		t.Errorf("table report lacks the blocked flow:\n%s", out)
	}
}

func TestReplayNothingWrongExits0(t *testing.T) {
	cfg := writeFile(t, "site.yaml", siteYAML)
	capFile := writePcap(t, layers.LinkTypeEthernet,
		tcpPacket(t, "198.51.100.7", "192.0.2.10", 50000, 3741, true, false, false),
		tcpPacket(t, "192.0.2.10", "198.51.100.7", 3741, 50000, true, true, false),
	)
	out, stderr, status := tpwatch(t, "replay", "--config", cfg, "--format", "json", capFile)
	if status != exitOK {
		t.Fatalf("status %d, want 0: %s %s", status, out, stderr)
	}
}

func TestReplayTruncatedCapture(t *testing.T) {
	cfg := writeFile(t, "site.yaml", siteYAML)
	full := writePcap(t, layers.LinkTypeEthernet,
		tcpPacket(t, "198.51.100.7", "192.0.2.10", 50000, 3741, true, false, false),
		tcpPacket(t, "192.0.2.10", "198.51.100.7", 3741, 50000, true, true, false),
		tcpPacket(t, "198.51.100.7", "192.0.2.10", 50000, 3741, false, true, false),
	)
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, data[:len(data)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, status := tpwatch(t, "replay", "--config", cfg, "--format", "json", cut)
	if status != exitError {
		t.Fatalf("status %d, want 2", status)
	}
	flows := parseNDJSON(t, out)
	if len(flows) != 1 || flows[0]["verdict"] != "allowed" {
		t.Errorf("what could be read was not reported: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "cut.pcap") || !strings.Contains(last, "record 3") {
		t.Errorf("error does not say where the file stopped: %q", stderr)
	}
}

func TestReplayUnknownLinkType(t *testing.T) {
	capFile := writePcap(t, layers.LinkType(147), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	_, stderr, status := tpwatch(t, "replay", "--format", "json", capFile)
	if status != exitError {
		t.Fatalf("status %d, want 2", status)
	}
	if !strings.Contains(stderr, "link type") || !strings.Contains(stderr, "test.pcap") {
		t.Errorf("unclear error for an unknown link type: %q", stderr)
	}
}

func TestReplayNotACapture(t *testing.T) {
	p := writeFile(t, "notes.txt", "this is not a capture file\n")
	_, stderr, status := tpwatch(t, "replay", "--format", "json", p)
	if status != exitError || !strings.Contains(stderr, "notes.txt") {
		t.Errorf("status %d, stderr %q", status, stderr)
	}
}

func TestPrintInventoryRoundTrip(t *testing.T) {
	out, stderr, status := tpwatch(t, "replay", "--print-inventory", "../../pcaps/demo-site.pcapng")
	if status != exitOK {
		t.Fatalf("status %d: %s", status, stderr)
	}
	for _, want := range []string{
		"roles:",
		"- 192.0.2.10 # answered tcp/3741 (agent-em-grpc): 4 flows, the first from 198.51.100.21",
		"- 198.51.100.22 # reached tcp/10000 of 192.0.2.13 (agent-tm-tcp): 1 flow",
		"- 192.0.2.11 # answered tcp/1433 (em-sql-tds)",
		"# Could not decide:\n# - 192.0.2.77 used tcp/1433 of 192.0.2.11 and nothing else",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inferred inventory lacks %q:\n%s", want, out)
		}
	}
	// Evidence only: the outsider on the SQL Server is no Enterprise
	// Manager, and the CEE server, which never answered, no CEE server.
	for _, absent := range []string{"192.0.2.77 #", "198.51.100.41", "203.0.113.40"} {
		if strings.Contains(out, absent) {
			t.Errorf("inferred inventory has %q, which the traffic does not show:\n%s", absent, out)
		}
	}
	cfg := writeFile(t, "inferred.yaml", out)
	if _, stderr, status := tpwatch(t, "policy", "check", "--config", cfg); status != exitOK {
		t.Errorf("the written inventory does not pass policy check: %s", stderr)
	}
	// Replaying with the written inventory finds the same problems as
	// inferring it again; it also allows the few flows that came before
	// the flow that taught their hosts' roles.
	inferred, _, _ := tpwatch(t, "replay", "--format", "json", "../../pcaps/demo-site.pcapng")
	given, _, _ := tpwatch(t, "replay", "--format", "json", "--config", cfg, "../../pcaps/demo-site.pcapng")
	count := func(out, verdict string) int { return strings.Count(out, `"verdict":"`+verdict+`"`) }
	for _, v := range []string{"blocked", "unexpected"} {
		if count(inferred, v) != count(given, v) {
			t.Errorf("%s: %d flows inferred, %d with the written inventory", v, count(inferred, v), count(given, v))
		}
	}
	if count(given, "allowed") < count(inferred, "allowed") {
		t.Errorf("allowed: %d flows inferred, only %d with the written inventory", count(inferred, "allowed"), count(given, "allowed"))
	}
	if count(given, "blocked") != 3 {
		t.Errorf("%d blocked flows with no set-up, want the demo's 3 that the traffic shows (agent2's two, agent3's refusal)", count(given, "blocked"))
	}
}

// TestSequentialAndParallelAgree: one goroutine or two, the same JSON, the
// payloads' findings included, on the committed captures and on corpus
// captures whose first payloads come after a pause or open the file (the
// packet clock holds those: the reading side's identification once got
// lost there).
func TestSequentialAndParallelAgree(t *testing.T) {
	files := []string{"../../pcaps/demo-site.pcapng", "../../pcaps/matrix-v4.pcap", "../../pcaps/ipv6-vlan.pcapng", "../../pcaps/pending.pcap"}
	corpus := testenv.Corpus(t)
	withApps := map[string]bool{}
	for _, f := range []string{"protocols/ndpi/kerberos.pcap", "protocols/ndpi/mssql_tds.pcap", "protocols/ndpi/tls_cipher_lens.pcap", "protocols/ndpi/tls_2_reasms_b.pcapng", "protocols/arkime/nbns.pcap"} {
		f = filepath.Join(corpus, f)
		files, withApps[f] = append(files, f), true
	}
	for _, f := range files {
		par, _, s1 := tpwatch(t, "replay", "--format", "json", "--all", f)
		seq, _, s2 := tpwatch(t, "replay", "--format", "json", "--all", "--sequential", f)
		if par != seq || s1 != s2 || par == "" {
			t.Errorf("%s: parallel and sequential replays differ (status %d vs %d)", f, s1, s2)
		}
		if withApps[f] && !strings.Contains(par, `"app":`) {
			t.Errorf("%s: no flow's protocol named", f)
		}
	}
	// With its inventory, pending.pcap's agent sends its first payload to
	// 3741 after ten quiet seconds.
	par, _, _ := tpwatch(t, "replay", "--format", "json", "--config", "../../pcaps/pending.yaml", "../../pcaps/pending.pcap")
	seq, _, _ := tpwatch(t, "replay", "--format", "json", "--config", "../../pcaps/pending.yaml", "--sequential", "../../pcaps/pending.pcap")
	if par != seq || !strings.Contains(par, `"app":`) {
		t.Errorf("pending.pcap with its inventory: parallel and sequential replays differ, or name no protocol:\n%s\n%s", par, seq)
	}
}

// writePcapAt writes frames at the given offsets from a fixed time.
func writePcapAt(t *testing.T, name string, at []time.Duration, frames ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: base.Add(at[i]), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Files given out of time order (cap_10 before cap_9) are read in the
// order of their first packet: the same verdicts either way, and no
// working flow turned into blocked/no_response.
func TestReplayFilesOutOfOrder(t *testing.T) {
	cfg := writeFile(t, "site.yaml", siteYAML)
	early := writePcapAt(t, "cap_9.pcap", []time.Duration{0, time.Second},
		tcpPacket(t, "198.51.100.7", "192.0.2.10", 50000, 3741, true, false, false),
		tcpPacket(t, "192.0.2.10", "198.51.100.7", 3741, 50000, true, true, false))
	late := writePcapAt(t, "cap_10.pcap", []time.Duration{5 * time.Minute, 5*time.Minute + time.Second},
		tcpPacket(t, "198.51.100.8", "192.0.2.10", 50001, 3741, true, false, false),
		tcpPacket(t, "192.0.2.10", "198.51.100.8", 3741, 50001, true, true, false))
	inOrder, _, s1 := tpwatch(t, "replay", "--config", cfg, "--format", "json", early, late)
	reversed, _, s2 := tpwatch(t, "replay", "--config", cfg, "--format", "json", late, early)
	if s1 != exitOK || s2 != exitOK {
		t.Errorf("statuses %d and %d, want 0: every flow worked", s1, s2)
	}
	if inOrder != reversed || strings.Contains(reversed, "no_response") {
		t.Errorf("out-of-order files change the verdicts:\nin order:\n%s\nreversed:\n%s", inOrder, reversed)
	}
}
