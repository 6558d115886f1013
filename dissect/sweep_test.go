package dissect

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/capture"
	"github.com/tpwatch/tpwatch/internal/testenv"
	"github.com/tpwatch/tpwatch/policy"
)

// TestCorpusAppSweep runs Identify over the first payload of each
// direction of every TCP and UDP flow of the corpus whose server port is a
// fixed port of the matrix, and compares it with tshark (research notes
// 2.2, acceptance test 3): Identify must say what tshark says, or unknown,
// never another protocol, unless sweepExplained says why.
//
// tshark is asked once, on a capture of just those first payloads written
// for the purpose, with TCP reassembly off so that it too sees each
// payload alone. Without tshark, the test checks each app against the
// protocols MANIFEST.tsv lists for the whole file (all_protocols), which
// is weaker but free. Either way the agreement table is in the test log.
func TestCorpusAppSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the whole corpus")
	}
	dir := testenv.Corpus(t)
	rows := testenv.Manifest(t, dir)
	ports := documentedPorts(t)
	var firsts []*firstPayload
	for _, row := range rows {
		if ok := row["tshark_ok"]; ok != "yes" && ok != "warn" {
			continue
		}
		firsts = append(firsts, sweepFile(t, dir, row["path"], ports, row["all_protocols"])...)
	}
	if len(firsts) < 1000 {
		t.Errorf("only %d first payloads on documented ports in the corpus", len(firsts))
	}
	for _, fp := range firsts {
		var id Identification
		Identify(fp.transport, fp.payload, fp.payloadLen, &id)
		fp.app = id.App
	}
	if tshark, err := exec.LookPath("tshark"); err == nil {
		askTshark(t, tshark, firsts)
	} else if testenv.CI() {
		testenv.Missing(t, "tshark (Debian package tshark)", err)
	} else {
		t.Log("tshark not installed: comparing with MANIFEST.tsv's all_protocols of each file")
		for _, fp := range firsts {
			fp.tshark = manifestApp(fp.app, fp.fileProtocols)
		}
	}
	compareSweep(t, firsts)
}

// firstPayload is the first payload of one direction of one flow.
type firstPayload struct {
	file              string
	frame             int
	transport         Transport
	src, dst          netip.AddrPort
	serverPort        uint16
	payload           []byte
	payloadLen        int
	link              capture.LinkType
	frameData         []byte // the whole frame, for tshark
	wireLen           uint32
	ts                int64
	fileProtocols     string // MANIFEST all_protocols
	app               App
	tshark            string // what tshark says, as an App name, or "(name)" for a protocol Identify has no name for
	tsharkProtocols   string
	tsharkProtoColumn string
}

// documentedPorts returns the fixed server ports of the matrix (its
// ranges are the dynamic ones, where a flow is anything), by transport.
func documentedPorts(t *testing.T) map[Transport]map[uint16]bool {
	m, err := policy.DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	ports := map[Transport]map[uint16]bool{TCP: {}, UDP: {}}
	for _, r := range m.Rules {
		for _, pr := range r.Ports {
			if pr.Low == pr.High {
				ports[Transport(r.Transport)][pr.Low] = true
			}
		}
	}
	return ports
}

// sweepFile returns the first payload of each direction of each flow of
// a capture whose server port is documented: a flow is keyed by its
// unordered address and port pair, and is the first one of that pair.
func sweepFile(t *testing.T, dir, name string, ports map[Transport]map[uint16]bool, protocols string) []*firstPayload {
	type flowKey struct {
		tr   Transport
		a, b netip.AddrPort
	}
	seen := map[flowKey][2]bool{}
	var out []*firstPayload
	r, err := capture.OpenFile(filepath.Join(dir, name))
	if err != nil {
		return nil // a capture the reader refuses (MANIFEST marks some corrupt on purpose)
	}
	defer r.Close()
	var rec capture.Record
	var hdr capture.Packet
	for frame := 1; ; frame++ {
		if r.Next(&rec) != nil {
			return out
		}
		hdr = capture.Packet{}
		if capture.Decode(rec.Link, rec.Data, &hdr) != capture.StatusOK || hdr.Fragment || hdr.PayloadLen == 0 ||
			(hdr.Proto != capture.ProtoTCP && hdr.Proto != capture.ProtoUDP) {
			continue
		}
		tr := Transport(hdr.Proto)
		var server uint16
		switch {
		case ports[tr][hdr.DstPort]:
			server = hdr.DstPort
		case ports[tr][hdr.SrcPort]:
			server = hdr.SrcPort
		default:
			continue
		}
		src := netip.AddrPortFrom(netip.AddrFrom16(hdr.Src).Unmap(), hdr.SrcPort)
		dst := netip.AddrPortFrom(netip.AddrFrom16(hdr.Dst).Unmap(), hdr.DstPort)
		key, dirn := flowKey{tr, src, dst}, 0
		if dst.Compare(src) < 0 {
			key, dirn = flowKey{tr, dst, src}, 1
		}
		done := seen[key]
		if done[dirn] {
			continue
		}
		p := corpusPacket{transport: tr, payloadLen: int(hdr.PayloadLen)}
		if !gopacketPayload(rec.Link, rec.Data, &p) || len(p.payload) == 0 {
			continue
		}
		done[dirn] = true
		seen[key] = done
		out = append(out, &firstPayload{
			file: name, frame: frame, transport: tr, src: src, dst: dst, serverPort: server,
			payload: bytes.Clone(p.payload), payloadLen: p.payloadLen,
			link: rec.Link, frameData: bytes.Clone(rec.Data), wireLen: rec.WireLen, ts: rec.TS,
			fileProtocols: protocols,
		})
	}
}

// askTshark reads tshark's protocol chain of each first payload.
func askTshark(t *testing.T, tshark string, firsts []*firstPayload) {
	batches := batchByConversation(firsts)
	for i, batch := range batches {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("firsts-%d.pcapng", i))
		if err := writeFirstsPcapng(path, batch); err != nil {
			t.Fatal(err)
		}
		runTshark(t, tshark, path, batch)
	}
	t.Logf("tshark read the %d first payloads in %d runs", len(firsts), len(batches))
}

// batchByConversation splits frames (in file order, each file's frames
// together) into batches for tshark, each written as one capture. tshark
// keeps state per conversation (a StartTLS, a DCE/RPC bind), and captures
// of the corpus reuse addresses and ports (suricata-verify's 1.1.1.1:5555
// → 2.2.2.2:389 is in a dozen files), so no two files of a batch share a
// conversation.
func batchByConversation(frames []*firstPayload) [][]*firstPayload {
	type conv struct {
		tr   Transport
		a, b netip.AddrPort
	}
	key := func(fp *firstPayload) conv {
		if fp.dst.Compare(fp.src) < 0 {
			return conv{fp.transport, fp.dst, fp.src}
		}
		return conv{fp.transport, fp.src, fp.dst}
	}
	var batches [][]*firstPayload
	var used []map[conv]string // conversation → file, per batch
	for i := 0; i < len(frames); {
		j := i
		for j < len(frames) && frames[j].file == frames[i].file {
			j++
		}
		file := frames[i:j:j]
		b := 0
	find:
		for ; b < len(batches); b++ {
			for _, fp := range file {
				if f, ok := used[b][key(fp)]; ok && f != fp.file {
					continue find
				}
			}
			break
		}
		if b == len(batches) {
			batches = append(batches, nil)
			used = append(used, map[conv]string{})
		}
		for _, fp := range file {
			used[b][key(fp)] = fp.file
		}
		batches[b] = append(batches[b], file...)
		i = j
	}
	return batches
}

// runTshark reads tshark's protocol chain of each frame of a capture
// written from batch. Reassembly and sequence analysis are off: tshark
// sees each payload alone, as Identify does, and does not take a payload
// for a retransmission.
func runTshark(t *testing.T, tshark, path string, batch []*firstPayload) {
	cmd := exec.Command(tshark, "-n", "-r", path, "-o", "tcp.desegment_tcp_streams:FALSE", "-o", "tcp.analyze_sequence_numbers:FALSE",
		"-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "frame.protocols", "-e", "_ws.col.Protocol")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 {
			continue
		}
		num, err := strconv.Atoi(f[0])
		if err != nil || num < 1 || num > len(batch) {
			t.Fatalf("tshark line %q", sc.Text())
		}
		fp := batch[num-1]
		fp.tsharkProtocols, fp.tsharkProtoColumn = f[1], f[2]
		fp.tshark = tsharkApp(f[1])
		n++
	}
	if n != len(batch) {
		t.Fatalf("tshark read %d of the %d frames written", n, len(batch))
	}
}

// writeFirstsPcapng writes the frames of firsts, in order, as pcapng.
func writeFirstsPcapng(path string, firsts []*firstPayload) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		b := binary.LittleEndian.AppendUint32(nil, typ)
		b = binary.LittleEndian.AppendUint32(b, n)
		b = append(b, body...)
		b = binary.LittleEndian.AppendUint32(b, n)
		w.Write(b)
	}
	shb := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	shb = binary.LittleEndian.AppendUint16(shb, 1)
	shb = binary.LittleEndian.AppendUint16(shb, 0)
	shb = binary.LittleEndian.AppendUint64(shb, ^uint64(0))
	block(0x0a0d0d0a, shb)
	ifaces := map[capture.LinkType]uint32{}
	for _, fp := range firsts {
		id, ok := ifaces[fp.link]
		if !ok {
			id = uint32(len(ifaces))
			ifaces[fp.link] = id
			idb := binary.LittleEndian.AppendUint16(nil, uint16(fp.link))
			idb = binary.LittleEndian.AppendUint16(idb, 0)
			idb = binary.LittleEndian.AppendUint32(idb, 0)
			block(1, idb)
		}
		us := uint64(fp.ts / 1000)
		epb := binary.LittleEndian.AppendUint32(nil, id)
		epb = binary.LittleEndian.AppendUint32(epb, uint32(us>>32))
		epb = binary.LittleEndian.AppendUint32(epb, uint32(us))
		epb = binary.LittleEndian.AppendUint32(epb, uint32(len(fp.frameData)))
		epb = binary.LittleEndian.AppendUint32(epb, max(fp.wireLen, uint32(len(fp.frameData))))
		block(6, append(epb, fp.frameData...))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tsharkApp names the application protocol of a tshark protocol chain
// (frame.protocols, "eth:ethertype:ip:tcp:nbss:smb2") as Identify would:
// the first protocol above TCP or UDP that Identify knows, "(none)" when
// tshark found nothing above the transport, "(name)" for one Identify has
// no name for.
func tsharkApp(chain string) string {
	layers := strings.Split(chain, ":")
	i := 0
	for i < len(layers) && layers[i] != "tcp" && layers[i] != "udp" {
		i++
	}
	above := layers[min(i+1, len(layers)):]
	if len(above) == 0 {
		return "(none)"
	}
	has := func(name string) bool {
		for _, l := range above {
			if l == name {
				return true
			}
		}
		return false
	}
	switch l := above[0]; l {
	case "tls", "ssl":
		return "tls"
	case "http2":
		if has("grpc") {
			return "grpc"
		}
		return "http2"
	case "http":
		// tshark's HTTP dissector on port 80 hands HTTP/2 on.
		if has("http2") {
			if has("grpc") {
				return "grpc"
			}
			return "http2"
		}
		return "http"
	case "tds":
		return "tds"
	case "amqp":
		return "amqp"
	case "smb", "smb2":
		return "smb"
	case "nbss":
		if has("smb") || has("smb2") {
			return "smb"
		}
		return "netbios-ssn"
	case "dcerpc":
		return "dcerpc"
	case "ldap", "cldap":
		return "ldap"
	case "kerberos":
		return "kerberos"
	case "nbns":
		return "nbns"
	case "nbdgm":
		return "nbdgm"
	case "syslog":
		return "syslog"
	case "tpkt":
		if has("rdp") {
			return "rdp"
		}
		return "(tpkt)"
	case "data":
		return "(data)"
	default:
		return "(" + l + ")"
	}
}

// manifestApp is the weaker oracle: the app if tshark found its protocol
// anywhere in the file, else "(absent)".
func manifestApp(a App, fileProtocols string) string {
	names := map[App][]string{
		AppTLS: {"tls", "ssl"}, AppHTTP2: {"http2"}, AppGRPC: {"grpc"}, AppHTTP: {"http"}, AppTDS: {"tds"},
		AppAMQP: {"amqp"}, AppSMB: {"smb", "smb2"}, AppNetBIOSSession: {"nbss"}, AppDCERPC: {"dcerpc"},
		AppLDAP: {"ldap", "cldap"}, AppKerberos: {"kerberos"}, AppNBNS: {"nbns"}, AppNBDGM: {"nbdgm"},
		AppSyslog: {"syslog"}, AppRDP: {"rdp"},
	}[a]
	if names == nil {
		return "(" + a.String() + ")"
	}
	for _, p := range strings.Split(fileProtocols, ",") {
		for _, n := range names {
			if p == n {
				return a.String()
			}
		}
	}
	return "(absent)"
}

// sweepExplained lists the first payloads where Identify and tshark name
// different protocols, by file and frame ("file#frame") or by file, with
// the reason; each was checked by reading the bytes. An entry that
// explains nothing fails the test, so the list stays true.
var sweepExplained = map[string]string{
	"protocols/arkime/dcerpc_synthetic.pcap": "a synthetic capture sends DCE/RPC binds bare on port 445, " +
		"without SMB or NetBIOS framing; tshark dissects 445 as NBSS by its port",
	"protocols/suricata-verify/http2-bugfixes/input.pcap#8": "cleartext HTTP/2 on 443: the server's SETTINGS frame; " +
		"tshark dissects 443 as TLS by its port (and leaves the client's preface, frame 4, as data)",
	"protocols/suricata-verify/http2-compression-bug/input.pcap#6": "cleartext HTTP/2 on 443: the server's SETTINGS frame; " +
		"tshark dissects 443 as TLS by its port (and leaves the client's preface, frame 4, as data)",
	"protocols/suricata-verify/http2-keywords2/input.pcap#2": "an h2c upgrade: the segment holds the server's " +
		"HTTP/1.1 101 Switching Protocols and then its first HTTP/2 frames; Identify names the first bytes, tshark's chain ends in http2",
}

// compareSweep checks every first payload and logs the agreement table.
func compareSweep(t *testing.T, firsts []*firstPayload) {
	type row struct{ directions, agree, unknown, other, explained int }
	byTshark := map[string]*row{}
	unnamed := map[string]int{} // what Identify said where tshark named nothing it knows
	used := map[string]bool{}
	dump := os.Getenv("TPWATCH_SWEEP_DUMP") != ""
	for _, fp := range firsts {
		r := byTshark[fp.tshark]
		if r == nil {
			r = &row{}
			byTshark[fp.tshark] = r
		}
		r.directions++
		ours := fp.app.String()
		switch {
		case ours == fp.tshark || (fp.app == AppGRPC && fp.tshark == "http2"):
			r.agree++
		case fp.app == AppUnknown:
			r.unknown++
			if dump {
				t.Logf("unknown: %s frame %d %s → %s (%d of %d bytes), tshark %s: %x", fp.file, fp.frame, fp.src, fp.dst,
					len(fp.payload), fp.payloadLen, fp.tsharkProtocols, fp.payload[:min(24, len(fp.payload))])
			}
		case strings.HasPrefix(fp.tshark, "("):
			// tshark named nothing Identify knows (nothing at all, data,
			// or another protocol): no contradiction to check.
			r.other++
			unnamed[ours]++
			if dump {
				t.Logf("named: %s frame %d %s → %s (%d of %d bytes): %s, tshark %s: %x", fp.file, fp.frame, fp.src, fp.dst,
					len(fp.payload), fp.payloadLen, ours, fp.tsharkProtocols, fp.payload[:min(24, len(fp.payload))])
			}
		default:
			key := fmt.Sprintf("%s#%d", fp.file, fp.frame)
			if _, ok := sweepExplained[key]; !ok {
				key = fp.file
			}
			if _, ok := sweepExplained[key]; ok {
				used[key] = true
				r.explained++
				continue
			}
			r.other++
			t.Errorf("%s frame %d, %s → %s (%s, %d of %d bytes): Identify says %s, tshark %s (%s; %s) %x",
				fp.file, fp.frame, fp.src, fp.dst, fp.transport, len(fp.payload), fp.payloadLen, ours,
				fp.tshark, fp.tsharkProtocols, fp.tsharkProtoColumn, fp.payload[:min(24, len(fp.payload))])
		}
	}
	for key := range sweepExplained {
		if !used[key] {
			t.Errorf("sweepExplained[%q] explains nothing: remove it", key)
		}
	}
	names := make([]string, 0, len(byTshark))
	for n := range byTshark {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if byTshark[names[i]].directions != byTshark[names[j]].directions {
			return byTshark[names[i]].directions > byTshark[names[j]].directions
		}
		return names[i] < names[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Identify and tshark on the first payload of %d flow directions on documented fixed ports:\n", len(firsts))
	fmt.Fprintf(&b, "%-16s %10s %7s %8s %10s %6s\n", "tshark says", "directions", "agree", "unknown", "explained", "other")
	var total row
	for _, n := range names {
		r := byTshark[n]
		fmt.Fprintf(&b, "%-16s %10d %7d %8d %10d %6d\n", n, r.directions, r.agree, r.unknown, r.explained, r.other)
		total.directions += r.directions
		total.agree += r.agree
		total.unknown += r.unknown
		total.explained += r.explained
		total.other += r.other
	}
	fmt.Fprintf(&b, "%-16s %10d %7d %8d %10d %6d\n", "all", total.directions, total.agree, total.unknown, total.explained, total.other)
	apps := make([]string, 0, len(unnamed))
	for a, n := range unnamed {
		apps = append(apps, fmt.Sprintf("%s %d", a, n))
	}
	sort.Strings(apps)
	fmt.Fprintf(&b, "where tshark names no protocol Identify knows, Identify says: %s\n", strings.Join(apps, ", "))
	t.Log(b.String())
}
