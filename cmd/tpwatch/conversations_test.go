package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/internal/testenv"
)

// TestCorpusConversations compares, capture by capture, the TCP and UDP
// conversations tpwatch reports with what tshark counts (MANIFEST.tsv's
// tcp_conversations and udp_conversations, from `tshark -z conv,tcp -z
// conv,udp`). tshark counts unordered address/port pairs over the whole
// file, so our flows are deduplicated the same way: two flows of one pair
// (port reuse, a flow ended by timeout and started again) are one
// conversation.
//
// tshark counts a conversation on every layer of a tunnelled packet: a
// VXLAN packet is the UDP conversation from the switch to the sensor's
// port 4789 and the conversation inside. tpwatch reports the inner flow
// only (the outer one is transport to the sensor, not traffic the matrix
// judges, and counting both would count every mirrored packet and byte
// twice). So the comparison adds, for each packet tpwatch decapsulated,
// the TCP and UDP conversations of the layers it removed, read with
// capture.DecodeTunnels: the outer flows tpwatch deliberately leaves out,
// and nothing it reports.
//
// Every difference is either a bug or has a cause written in
// conversationDifferences; an entry whose file now agrees fails too, so the
// table stays true.
func TestCorpusConversations(t *testing.T) {
	dir := testenv.Corpus(t)
	rows := testenv.Manifest(t, dir)
	for _, col := range []string{"path", "format", "tshark_ok", "tcp_conversations", "udp_conversations"} {
		if _, ok := rows[0][col]; !ok {
			t.Fatalf("MANIFEST.tsv has no %s column", col)
		}
	}
	type tally struct{ compared, agree, explained, bugs int }
	var all tally
	byCause := map[string]int{}
	usedPattern := map[string]int{}
	var disagreements []string
	diffs := conversationDifferences()
	for _, row := range rows {
		if ok := row["tshark_ok"]; ok != "yes" && ok != "warn" {
			continue
		}
		wantTCP, err1 := strconv.Atoi(row["tcp_conversations"])
		wantUDP, err2 := strconv.Atoi(row["udp_conversations"])
		if err1 != nil || err2 != nil {
			continue
		}
		name := row["path"]
		all.compared++
		gotTCP, gotUDP := conversations(t, filepath.Join(dir, name))
		agrees := gotTCP == wantTCP && gotUDP == wantUDP
		diff := fmt.Sprintf("%s (%s): tcp %d, tshark %d; udp %d, tshark %d", name, row["format"], gotTCP, wantTCP, gotUDP, wantUDP)
		if os.Getenv("TPWATCH_CONV_DUMP") != "" && !agrees {
			disagreements = append(disagreements, diff)
		}
		key, why, explained := explainDifference(diffs, name, row["format"])
		switch {
		case agrees && explained && key == name:
			t.Errorf("%s now agrees with tshark: remove its entry (%s) from conversationDifferences", name, why)
			all.agree++
		case agrees:
			all.agree++
		case !explained:
			t.Errorf("unexplained difference: %s", diff)
		default:
			usedPattern[key]++
			cause, _, _ := strings.Cut(why, ":")
			byCause[cause]++
			all.explained++
			if strings.HasPrefix(why, "bug:") {
				all.bugs++
				t.Logf("known tpwatch bug: %s: %s", diff, why)
			}
		}
	}
	for key := range diffs {
		if usedPattern[key] == 0 && (strings.HasPrefix(key, "format:") || strings.ContainsAny(key, "*?[")) {
			t.Errorf("pattern %q explains no difference: remove it", key)
		}
	}
	if all.compared < 1000 {
		t.Errorf("compared %d captures, want most of the corpus", all.compared)
	}
	causes := make([]string, 0, len(byCause))
	for c, n := range byCause {
		causes = append(causes, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(causes)
	t.Logf("conversations: %d captures compared with tshark, %d agree, %d differ with a written cause (%s), %d of them tpwatch bugs",
		all.compared, all.agree, all.explained, strings.Join(causes, ", "), all.bugs)
	for _, d := range disagreements {
		t.Log(d)
	}
}

// explainDifference finds the entry of conversationDifferences for a file:
// its own, else a family pattern over the path or "format:" the MANIFEST
// format.
func explainDifference(diffs map[string]string, name, format string) (key, why string, ok bool) {
	if why, ok := diffs[name]; ok {
		return name, why, true
	}
	keys := make([]string, 0, len(diffs))
	for k := range diffs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		subject := name
		pattern := k
		if p, isFormat := strings.CutPrefix(k, "format:"); isFormat {
			subject, pattern = format, p
		}
		if m, _ := path.Match(pattern, subject); m && strings.ContainsAny(k, "*?[") || (strings.HasPrefix(k, "format:") && pattern == subject) {
			return k, diffs[k], true
		}
	}
	return "", "", false
}

// conversations replays one capture and counts its distinct TCP and UDP
// conversations: unordered pairs of address/port ends, those tpwatch
// reports and those of the tunnel layers it removed.
func conversations(t *testing.T, file string) (tcp, udp int) {
	t.Helper()
	stdout, stderr, status := tpwatch(t, "replay", "--format", "json", "--all", "--progress", "never", file)
	if status != exitOK && status != exitProblems && status != exitError {
		t.Fatalf("%s: exit status %d: %s", file, status, stderr)
	}
	seen := map[string]bool{}
	count := func(transport string, srcIP string, srcPort int, dstIP string, dstPort int) {
		a := fmt.Sprintf("%s|%d", srcIP, srcPort)
		b := fmt.Sprintf("%s|%d", dstIP, dstPort)
		if b < a {
			a, b = b, a
		}
		key := transport + " " + a + " " + b
		if seen[key] {
			return
		}
		seen[key] = true
		switch transport {
		case "tcp":
			tcp++
		case "udp":
			udp++
		}
	}
	for _, c := range tunnelLayerConversations(t, file) {
		count(c.transport, c.srcIP, c.srcPort, c.dstIP, c.dstPort)
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var f struct {
			Transport string `json:"transport"`
			SrcIP     string `json:"src_ip"`
			SrcPort   int    `json:"src_port"`
			DstIP     string `json:"dst_ip"`
			DstPort   int    `json:"dst_port"`
		}
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("%s: bad JSON line %q: %v", file, sc.Text(), err)
		}
		count(f.Transport, f.SrcIP, f.SrcPort, f.DstIP, f.DstPort)
	}
	return tcp, udp
}

// conversation is one TCP or UDP conversation as the JSON names it.
type conversation struct {
	transport        string
	srcIP, dstIP     string
	srcPort, dstPort int
}

// tunnelLayerConversations reads a capture and returns, for every packet
// tpwatch's decoder decapsulates, the TCP and UDP conversations of the
// layers it removes (the outer UDP flow of a VXLAN or Geneve packet, the
// middle one of VXLAN in Geneve).
func tunnelLayerConversations(t *testing.T, file string) []conversation {
	t.Helper()
	r, err := capture.OpenFile(file)
	if err != nil {
		return nil // the replay reports it
	}
	defer r.Close()
	var out []conversation
	var rec capture.Record
	var p, layer capture.Packet
	for r.Next(&rec) == nil {
		if capture.Decode(rec.Link, rec.Data, &p) != capture.StatusOK {
			continue
		}
		for depth := range int(p.Tunnels) {
			if capture.DecodeTunnels(rec.Link, rec.Data, &layer, depth) != capture.StatusOK || layer.Fragment {
				continue
			}
			transport := map[uint8]string{capture.ProtoTCP: "tcp", capture.ProtoUDP: "udp"}[layer.Proto]
			if transport == "" {
				continue
			}
			out = append(out, conversation{transport,
				netip.AddrFrom16(layer.Src).Unmap().String(), netip.AddrFrom16(layer.Dst).Unmap().String(),
				int(layer.SrcPort), int(layer.DstPort)})
		}
	}
	return out
}

// conversationDifferences explains every capture whose conversation counts
// differ from tshark's: by file, or by "format:" and a MANIFEST format for
// a whole family of one link type. The text before the first colon is the
// cause as the summary counts it; "bug:" marks a tpwatch bug still to fix.
// Each cause was checked with tshark on the files it lists (frame.protocols,
// its expert info and its conversation table) and with tpwatch's decode
// counters.
func conversationDifferences() map[string]string {
	why := map[string]string{
		"format:pcap/ieee-802-11-radiotap": "link type: tpwatch does not decode 802.11 (radiotap); tshark does",
		"format:pcap/arcnet_linux":         "link type: tpwatch does not decode ARCNET; tshark does",
		"format:pcap/ppp":                  "link type: tpwatch does not decode PPP; tshark does",
		"format:pcap/juniper-ether":        "link type: tpwatch does not decode Juniper's encapsulation; tshark does",
		"format:pcap/ip-ib":                "link type: tpwatch does not decode IP over InfiniBand; tshark does",
		"format:pcap/nflog":                "link type: tpwatch does not decode Linux NFLOG; tshark does",
		"format:pcap/pktap":                "link type: tpwatch does not decode Apple PKTAP; tshark does",
		"format:pcap/user2":                "link type: tpwatch does not decode a USER link type (here PKTAP, as tshark is told); tshark does",
		"format:pcap/ppi":                  "link type: tpwatch does not decode PPI (802.11); tshark does",
	}
	// The reasons a capture's counts differ from tshark's.
	differenceCauses := map[string]string{
		"payload":    "payload: tshark dissects the Ethernet frame an OpenFlow message carries in its TCP payload (packet-in, packet-out) and counts the UDP conversation in it; tpwatch reads headers, not payloads",
		"frag":       "IP fragments: tshark reassembles fragments and counts the flow they carry once; tpwatch does not reassemble, so it sees ports only in a first fragment and keeps ones tshark drops as overlapping",
		"bigtcp":     "length 0: the IP or UDP length field is 0 (a Linux BIG TCP/GSO super-packet); tshark marks the packet malformed and counts nothing, tpwatch takes the length from the frame and counts its conversations (inside VXLAN or Geneve, the inner TCP flow and the outer UDP one)",
		"trunc":      "truncated dissection: tshark stops on the oversized or bogus packet (packet size limited during capture, bogus IP length) before its conversation tap runs; tpwatch has the addresses and ports it needs and counts the pair",
		"reuse":      "port reuse: this tshark keys conv,tcp on tcp.stream, so an address/port pair reused after a close is a second conversation; tpwatch's pairs are counted once",
		"exthdr":     "IPv6 extension chain: the UDP header follows about a hundred extension headers (fragment headers among them); tpwatch stops walking the chain, tshark walks it all",
		"v6inv4link": "wrong link type: a LINKTYPE_IPV4 file holding an IPv6 packet; tshark dissects by the version nibble, tpwatch trusts the link type",
	}
	for cause, files := range map[string][]string{
		"bigtcp": {
			"tcpdump/bigtcp-ipv4-geneve-ipv4.pcap",
			"tcpdump/bigtcp-ipv4-geneve-ipv6.pcap",
			"tcpdump/bigtcp-ipv4-vxlan-ipv4.pcap",
			"tcpdump/bigtcp-ipv4-vxlan-ipv6.pcap",
			"tcpdump/bigtcp-ipv6-geneve-ipv4.pcap",
			"tcpdump/bigtcp-ipv6-geneve-ipv6.pcap",
			"tcpdump/bigtcp-ipv6-vxlan-ipv4.pcap",
			"tcpdump/bigtcp-ipv6-vxlan-ipv6.pcap",
			"tcpdump/bigtcp-ipv6.pcap",
		},
		"exthdr": {
			"protocols/libpcap/filter/ipv6_ext_headers.pcap",
		},
		"frag": {
			"protocols/suricata-verify/defrag/bug-6887-defrag-eth-vlan-ipv4-tcp-syn/frag-eth-vlan-ip-tcp-syn.pcap",
			"protocols/suricata-verify/defrag/bug-6887-defrag-ipv4-tcp-syn/frag-ip-tcp-syn.pcap",
			"protocols/zeek/ipv4/fragmented-2.pcap",
			"protocols/zeek/ipv4/fragmented-3.pcap",
		},
		"reuse": {
			"protocols/arkime/tcp-reassembly-synthetic.pcap",
			"protocols/arkime/tcp_handshake_synthetic.pcap",
		},
		"trunc": {
			"tcpdump/beep-oobr.pcap",
			"tcpdump/heapoverflow-tcp_print.pcap",
			"tcpdump/mptcp-dss-oobr.pcap",
			"tcpdump/tcp-auth-heapoverflow.pcap",
		},
		"payload": {
			"tcpdump/of13_ericsson.pcapng",
		},
		"v6inv4link": {
			"tcpdump/LINKTYPE_IPV4_invalid.pcap",
		},
	} {
		for _, f := range files {
			why[f] = differenceCauses[cause]
		}
	}
	return why
}
