package dissect

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// TestEPMCorpus follows every connection to TCP 135 of the corpus (the
// captures MANIFEST.tsv lists with tcp/135) with an RPCConn, and compares
// what each answer teaches with what tshark reads from it (research notes
// 1.8: tshark -Y 'epm.opnum == 3 && dcerpc.pkt_type == 2' -e
// epm.proto.tcp_port): the same ports, in the same order, for the same
// interfaces; nothing from an ept_lookup or any other call. Each answer is
// also read alone, as a capture begun after the bind would show it: the
// guessed transfer syntax must give the same towers (acceptance test 4).
func TestEPMCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the corpus")
	}
	dir := testenv.Corpus(t)
	var frames []*firstPayload
	learned := map[string]string{} // file#frame → "uuid port ..." as RPCConn read the connection
	alone := map[string]string{}   // the same, for the answer read alone
	files := 0
	dcom := map[string][]string{} // file#frame → DCOM bindings learned
	var stats struct{ encrypted, errors, faults, malformed, truncated, unsynced int }
	for _, row := range testenv.Manifest(t, dir) {
		if !strings.Contains(","+row["ports_of_interest"]+",", ",tcp/135,") {
			continue
		}
		files++
		conns := map[[2]netip.AddrPort]*RPCConn{}
		eachCorpusPacket(t, filepath.Join(dir, row["path"]), func(p *corpusPacket) bool {
			if p.transport != TCP || (p.srcPort != 135 && p.dstPort != 135) || p.payloadLen == 0 {
				return true
			}
			src, dst := netip.AddrPortFrom(p.src, p.srcPort), netip.AddrPortFrom(p.dst, p.dstPort)
			from, key := SideClient, [2]netip.AddrPort{src, dst}
			if p.srcPort == 135 {
				from, key = SideServer, [2]netip.AddrPort{dst, src}
			}
			c := conns[key]
			if c == nil {
				c = new(RPCConn)
				conns[key] = c
			}
			var r RPCResult
			c.Feed(from, p.seq, p.payload, p.payloadLen, &r)
			checkRPCResult(t, &r)
			name := fmt.Sprintf("%s#%d", row["path"], p.frame)
			if got := towersOf(&r); got != "" {
				learned[name] = got
			}
			for _, e := range r.Endpoints[:r.NumEndpoints] {
				if e.Source == SourceDCOM {
					dcom[name] = append(dcom[name], fmt.Sprintf("%s[%d]", e.Host(), e.Port))
				}
			}
			stats.encrypted += r.Encrypted
			stats.errors += r.Errors
			stats.faults += r.Faults
			stats.malformed += r.Malformed
			stats.truncated += r.Truncated
			stats.unsynced += r.Unsynced
			if from == SideServer {
				var lone RPCConn
				lone.Feed(from, p.seq, p.payload, p.payloadLen, &r)
				if got := towersOf(&r); got != "" {
					alone[name] = got
				}
			}
			frames = append(frames, &firstPayload{
				file: row["path"], frame: p.frame, transport: TCP, src: src, dst: dst,
				link: p.link, frameData: bytes.Clone(p.frameData), wireLen: p.wireLen, ts: p.ts,
			})
			return true
		})
	}
	if files < 20 {
		t.Errorf("only %d captures with tcp/135", files)
	}
	tshark := testenv.Tool(t, "tshark", "tshark")
	want := map[string]string{}
	for i, batch := range batchByConversation(frames) {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("epm-%d.pcapng", i))
		if err := writeFirstsPcapng(path, batch); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tshark, "-n", "-r", path, "-Y", "epm.opnum == 3 && dcerpc.pkt_type == 2",
			"-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "epm.uuid", "-e", "epm.proto.tcp_port").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			num, err := strconv.Atoi(f[0])
			if err != nil || num < 1 || num > len(batch) || len(f) < 3 {
				t.Fatalf("tshark line %q", sc.Text())
			}
			if towers := tsharkTowers(f[1], f[2]); towers != "" {
				want[fmt.Sprintf("%s#%d", batch[num-1].file, batch[num-1].frame)] = towers
			}
		}
	}
	agree := 0
	for name, w := range want {
		if learned[name] != w {
			t.Errorf("%s: learned %q, tshark %q", name, learned[name], w)
		} else {
			agree++
		}
		if alone[name] != w {
			t.Errorf("%s read alone: learned %q, tshark %q", name, alone[name], w)
		}
	}
	for name, got := range learned {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: learned %q where tshark reads no ept_map tower", name, got)
		}
	}
	for name, got := range alone {
		if _, ok := want[name]; !ok && learned[name] == "" {
			t.Logf("%s read alone: learned %q (the connection, read whole, teaches nothing: not an ept_map answer?)", name, got)
		}
	}
	t.Logf("%d captures with tcp/135: %d ept_map answers with TCP towers, %d agree with tshark", files, len(want), agree)
	t.Logf("also counted: %d sealed answers, %d error statuses, %d faults, %d malformed, %d truncated PDUs, %d bytes skipped unsynced",
		stats.encrypted, stats.errors, stats.faults, stats.malformed, stats.truncated, stats.unsynced)
	// The DCOM activation answers of the corpus (tshark does not read
	// string bindings): each names a port the client uses next, where the
	// capture goes on (LM_WMI frame 26, dcerpc-ctxids frame 18, LM_dcom
	// frame 3 to 60283).
	wantDCOM := map[string]string{
		"protocols/pcap-attack/Lateral_Movement/LM_dcom_mmc20.application_dcerpc.pcapng#2": "01566s-win16-ir[60283] 172.16.66.36[60283]",
		"protocols/suricata-verify/dcerpc/dcerpc-ctxids/input.pcap#17":                     "DC1[49724] 192.168.56.101[49724]",
		"protocols/zeek/dce-rpc/kerberos135_auth.pcapng#11":                                "BLACKCLOVER-DC[49718] 10.10.10.100[49718]",
		"enterprise/pcap-attack/Lateral_Movement/LM_WMI_ProcessCallCreate.pcapng#25":       "01566s-win16-ir[49670] 172.16.66.36[49670]",
	}
	for name, b := range dcom {
		if got := strings.Join(b, " "); got != wantDCOM[name] {
			t.Errorf("DCOM bindings of %s: %q, want %q", name, got, wantDCOM[name])
		}
		delete(wantDCOM, name)
	}
	for name, w := range wantDCOM {
		t.Errorf("DCOM bindings of %s: none, want %q", name, w)
	}
}

// towersOf formats the EPM endpoints of a result as "uuid port" pairs.
func towersOf(r *RPCResult) string {
	var parts []string
	for _, e := range r.Endpoints[:r.NumEndpoints] {
		if e.Source == SourceEPM && e.Transport == TCP {
			parts = append(parts, fmt.Sprintf("%s %d", e.Interface, e.Port))
		}
	}
	return strings.Join(parts, " ")
}

// tsharkTowers pairs tshark's floor-1 UUIDs (its epm.uuid lists floors 1
// and 2 of each tower; floor 2 is the transfer syntax) with its TCP ports.
func tsharkTowers(uuids, ports string) string {
	if ports == "" {
		return ""
	}
	var ifaces []string
	for _, u := range strings.Split(uuids, ",") {
		if pu, ok := parseUUID(u); ok && syntaxOf(pu) == SyntaxUnknown {
			ifaces = append(ifaces, u)
		}
	}
	var parts []string
	for i, p := range strings.Split(ports, ",") {
		iface := "?"
		if i < len(ifaces) {
			iface = ifaces[i]
		}
		parts = append(parts, iface+" "+p)
	}
	return strings.Join(parts, " ")
}
