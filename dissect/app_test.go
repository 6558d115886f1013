package dissect

import (
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// identifyCases are corpus frames (research notes 2.2 names most of them)
// with what Identify must say of each.
var identifyCases = []struct {
	frame  *corpusFrame
	app    App
	conf   Confidence
	sender Side
}{
	{&tls13ClientHello, AppTLS, ConfidenceHigh, SideClient},
	{&tls13ServerHello, AppTLS, ConfidenceHigh, SideServer},
	{&h2PrefaceNghttp2, AppHTTP2, ConfidenceHigh, SideClient},
	// A server's first frames: SETTINGS, then SETTINGS ACK.
	{&h2SettingsNghttp2, AppHTTP2, ConfidenceMedium, SideEither},
	// h2c_ascii.pcap is gRPC caught mid-stream: each direction starts with
	// a SETTINGS ACK, then HEADERS whose content-type is application/grpc
	// (Huffman-coded by the client, raw by the server).
	{&grpcClientMidstream, AppGRPC, ConfidenceMedium, SideClient},
	{&grpcServerMidstream, AppGRPC, ConfidenceMedium, SideServer},
	{&httpRequest, AppHTTP, ConfidenceHigh, SideClient},
	{&httpResponse, AppHTTP, ConfidenceHigh, SideServer},
	{&tdsPreloginTDS7, AppTDS, ConfidenceHigh, SideClient},
	{&tdsPreloginResponseTDS7, AppTDS, ConfidenceHigh, SideServer},
	{&tdsSQLBatch, AppTDS, ConfidenceMedium, SideClient},
	{&amqpHeader091, AppAMQP, ConfidenceHigh, SideClient},
	// Connection.Start, of which the first 64 bytes are kept: its frame
	// end is not there to check.
	{&amqpStart091, AppAMQP, ConfidenceMedium, SideServer},
	{&smb1Negotiate, AppSMB, ConfidenceHigh, SideClient},
	{&smb2NegotiateResponse, AppSMB, ConfidenceHigh, SideServer},
	{&nbssSessionRequestWin10, AppNetBIOSSession, ConfidenceHigh, SideClient},
	{&nbssPositiveResponseWin10, AppNetBIOSSession, ConfidenceMedium, SideServer},
	{&dcshadow24, AppDCERPC, ConfidenceHigh, SideClient},
	{&dcshadow25, AppDCERPC, ConfidenceHigh, SideServer},
	{&ldapBind, AppLDAP, ConfidenceHigh, SideClient},
	{&ldapBindResponseWindows, AppLDAP, ConfidenceHigh, SideServer},
	{&ldapSASLWindows, AppLDAP, ConfidenceLow, SideEither},
	{&krbASReqTCP, AppKerberos, ConfidenceHigh, SideClient},
	{&krbErrorTCP, AppKerberos, ConfidenceHigh, SideServer},
	{&krbASReqUDP, AppKerberos, ConfidenceHigh, SideClient},
	{&nbnsQuery, AppNBNS, ConfidenceHigh, SideClient},
	{&nbdgmBrowser, AppNBDGM, ConfidenceHigh, SideClient},
	{&rdpNegotiateRequest, AppRDP, ConfidenceHigh, SideClient},
	{&rdpNegotiateResponse, AppRDP, ConfidenceHigh, SideServer},
}

func TestIdentifyCorpusFrames(t *testing.T) {
	for _, tt := range identifyCases {
		var id Identification
		Identify(tt.frame.transport, tt.frame.payload, tt.frame.payloadLen, &id)
		if id.App != tt.app || id.Confidence != tt.conf || id.Sender != tt.sender || id.NeedMore {
			t.Errorf("%s frame %d: %v %v %v (need more %v); want %v %v %v", tt.frame.file, tt.frame.frame,
				id.App, id.Confidence, id.Sender, id.NeedMore, tt.app, tt.conf, tt.sender)
		}
	}
}

// TestIdentifyPrefixes: every prefix of every case, whether it is the
// whole payload or a snap length cut it, is the case's protocol or
// unknown (or HTTP/2 for gRPC): never another protocol (research notes 2.2,
// acceptance test 1).
func TestIdentifyPrefixes(t *testing.T) {
	for _, tt := range identifyCases {
		p := tt.frame.payload
		for n := range len(p) {
			for _, declared := range []int{n, tt.frame.payloadLen} {
				var id Identification
				Identify(tt.frame.transport, p[:n], declared, &id)
				// gRPC is HTTP/2 that says so in a HEADERS frame: before
				// the frame, it is HTTP/2.
				refines := tt.app == AppGRPC && id.App == AppHTTP2
				if id.App != tt.app && id.App != AppUnknown && !refines && !(n == 0 && id.App == AppNone) {
					t.Errorf("%s frame %d cut to %d of %d bytes: %v, want %v or unknown",
						tt.frame.file, tt.frame.frame, n, declared, id.App, tt.app)
				}
			}
		}
	}
}

// TestIdentifySynthetic covers what the corpus lacks: AMQP 1.0, gRPC with
// its preface, a short preface, the SQL Browser, syslog, and a few
// payloads that must not be mistaken.
func TestIdentifySynthetic(t *testing.T) {
	grpcHeaders := []byte{0x00, 0x00, 0x0f, 0x01, 0x04, 0x00, 0x00, 0x00, 0x01, // HEADERS, END_HEADERS, stream 1
		0x83, 0x86, // :method POST, :scheme http
		0x5f, 0x8b, 0x1d, 0x75, 0xd0, 0x62, 0x0d, 0x26, 0x3d, 0x4c, 0x4d, 0x65, 0x64} // content-type: application/grpc (Huffman)
	settings := []byte{0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x64}
	preface := []byte(h2Preface)
	for _, tt := range []struct {
		name     string
		tr       Transport
		in       []byte
		app      App
		conf     Confidence
		sender   Side
		needMore bool
	}{
		{"amqp 1.0", TCP, []byte("AMQP\x00\x01\x00\x00"), AppAMQP, ConfidenceHigh, SideEither, false},
		{"amqp 1.0 sasl", TCP, []byte("AMQP\x03\x01\x00\x00"), AppAMQP, ConfidenceHigh, SideEither, false},
		{"amqp cut", TCP, []byte("AMQ"), AppUnknown, ConfidenceNone, SideEither, true},
		{"h2c grpc", TCP, concat(preface, settings, grpcHeaders), AppGRPC, ConfidenceHigh, SideClient, false},
		{"h2c", TCP, concat(preface, settings), AppHTTP2, ConfidenceHigh, SideClient, false},
		{"h2c preface cut at 9", TCP, preface[:9], AppHTTP2, ConfidenceMedium, SideClient, false},
		{"h2c preface cut at 5", TCP, preface[:5], AppUnknown, ConfidenceNone, SideEither, true},
		{"grpc-go server settings", TCP, settings, AppHTTP2, ConfidenceMedium, SideEither, false},
		{"http response cut", TCP, []byte("HTTP/1.1 2"), AppUnknown, ConfidenceNone, SideEither, true},
		{"http request line cut", TCP, []byte("GET /index.html?a=b"), AppHTTP, ConfidenceMedium, SideClient, false},
		{"http/0.9 is not counted", TCP, []byte("GET /\r\n"), AppUnknown, ConfidenceNone, SideEither, false},
		{"rpc_in_data", TCP, []byte("RPC_IN_DATA /rpc/rpcproxy.dll?dc01:6004 HTTP/1.1\r\n"), AppHTTP, ConfidenceHigh, SideClient, false},
		{"ssrp ucast_inst", UDP, []byte("\x04SQLEXPRESS\x00"), AppSSRP, ConfidenceHigh, SideClient, false},
		{"ssrp bcast", UDP, []byte{0x02}, AppSSRP, ConfidenceMedium, SideClient, false},
		{"ssrp response", UDP, svrResp(sqlExpressData), AppSSRP, ConfidenceHigh, SideServer, false},
		{"ssrp dac", UDP, []byte{0x05, 0x06, 0x00, 0x01, 0x32, 0xdf}, AppSSRP, ConfidenceHigh, SideServer, false},
		{"syslog 3164", UDP, []byte("<34>Oct 11 22:14:15 mymachine su: 'su root' failed"), AppSyslog, ConfidenceMedium, SideClient, false},
		{"syslog octet counted", TCP, []byte("71 <165>1 2003-10-11T22:14:15.003Z host app - - - x"), AppSyslog, ConfidenceMedium, SideClient, false},
		{"syslog pri 192", UDP, []byte("<192>x"), AppUnknown, ConfidenceNone, SideEither, false},
		{"nbss keepalive", TCP, []byte{0x85, 0, 0, 0}, AppNetBIOSSession, ConfidenceLow, SideEither, false},
		{"tls application data", TCP, []byte{0x17, 0x03, 0x03, 0x00, 0x20, 0xaa}, AppTLS, ConfidenceMedium, SideEither, false},
		{"tls record cut", TCP, []byte{0x16, 0x03, 0x01}, AppUnknown, ConfidenceNone, SideEither, true},
		// ndpi/google_ssl.pcap frame 4: an SSL 2.0 format ClientHello
		// offering TLS 1.0 (first 24 of 126 bytes).
		{"sslv2 client hello", TCP, []byte{0x80, 0x7c, 0x01, 0x03, 0x01, 0x00, 0x63, 0x00, 0x00, 0x00, 0x10, 0x00,
			0x00, 0x39, 0x00, 0x00, 0x38, 0x00, 0x00, 0x35, 0x00, 0x00, 0x16, 0x00}, AppTLS, ConfidenceHigh, SideClient, false},
		// suricata-verify tls13-draft18 frame 10: a ServerHello whose
		// version is TLS 1.3 draft 18 (0x7f12).
		{"tls 1.3 draft server hello", TCP, []byte{0x16, 0x03, 0x01, 0x00, 0x52, 0x02, 0x00, 0x00, 0x4e, 0x7f, 0x12, 0x02,
			0xbd, 0x41, 0xac, 0xa4, 0x1e, 0x1c, 0x31, 0xad, 0xf9, 0x7d, 0x61, 0xd7}, AppTLS, ConfidenceHigh, SideServer, false},
		{"ssh", TCP, []byte("SSH-2.0-OpenSSH_9.2p1\r\n"), AppUnknown, ConfidenceNone, SideEither, false},
		{"dce/rpc on udp is connectionless, not this", UDP, dcshadow24.payload, AppUnknown, ConfidenceNone, SideEither, false},
		{"tls on udp (dtls) is not tls", UDP, tls13ClientHello.payload, AppUnknown, ConfidenceNone, SideEither, false},
		{"empty", TCP, nil, AppNone, ConfidenceNone, SideEither, false},
		{"other transport", 1, []byte{1, 2, 3}, AppUnknown, ConfidenceNone, SideEither, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var id Identification
			Identify(tt.tr, tt.in, len(tt.in), &id)
			if id.App != tt.app || id.Confidence != tt.conf || id.Sender != tt.sender || id.NeedMore != tt.needMore {
				t.Errorf("got %v %v %v need more %v; want %v %v %v %v", id.App, id.Confidence, id.Sender, id.NeedMore,
					tt.app, tt.conf, tt.sender, tt.needMore)
			}
		})
	}
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestTLSClientHello: curl's ClientHello of curl-enabled-tls13.pcap frame
// 8, as tshark reads it (tls.handshake.extensions_server_name
// "enabled.tls13.com", extensions_alpn_str "h2,http/1.1", supported
// version 0x0304); the test then asks tshark again (without tshark or the
// corpus, the static expectation stands and the rest is skipped, or fails
// under CI).
func TestTLSClientHello(t *testing.T) {
	var id Identification
	f := &tls13ClientHello
	Identify(TCP, f.payload, f.payloadLen, &id)
	h := &id.TLS
	var alpn []string
	for i := range h.NumALPN() {
		alpn = append(alpn, string(h.ALPNName(i)))
	}
	got := string(h.SNI()) + " " + strings.Join(alpn, ",")
	if got != "enabled.tls13.com h2,http/1.1" || h.Version != 0x0304 || h.ALPN != ALPNH2|ALPNHTTP11 ||
		h.Extensions != HelloComplete || !h.HasALPN || h.Handshake != 1 {
		t.Errorf("hello: %q version %#x flags %v extensions %v handshake %d", got, h.Version, h.ALPN, h.Extensions, h.Handshake)
	}
	Identify(TCP, tls13ServerHello.payload, tls13ServerHello.payloadLen, &id)
	if id.TLS.Handshake != 2 || id.TLS.Version != 0x0304 || id.TLS.Extensions != HelloComplete || len(id.TLS.SNI()) != 0 {
		t.Errorf("server hello: handshake %d version %#x extensions %v", id.TLS.Handshake, id.TLS.Version, id.TLS.Extensions)
	}

	tshark := testenv.Tool(t, "tshark", "tshark")
	path := filepath.Join(testenv.Corpus(t), f.file)
	out, err := exec.Command(tshark, "-r", path, "-Y", "frame.number==8", "-T", "fields",
		"-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.extensions_alpn_str").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if want := strings.ReplaceAll(strings.TrimSpace(string(out)), "\t", " "); got != want {
		t.Errorf("SNI and ALPN %q, tshark says %q", got, want)
	}
}

// TestTLSHelloCut: a ClientHello cut anywhere reads as far as it goes: the
// server name is the whole one or none, never part of one.
func TestTLSHelloCut(t *testing.T) {
	p := tls13ClientHello.payload
	for n := 11; n < len(p); n++ {
		var id Identification
		Identify(TCP, p[:n], len(p), &id)
		if id.App != AppTLS || id.TLS.Extensions != HelloCut {
			t.Fatalf("cut at %d: %v, extensions %v; want tls, cut", n, id.App, id.TLS.Extensions)
		}
		if sni := string(id.TLS.SNI()); sni != "" && sni != "enabled.tls13.com" {
			t.Fatalf("cut at %d: server name %q", n, sni)
		}
	}
}

// TestTLSHelloFields builds ClientHellos for what the corpus frame lacks:
// TDS 8.0's ALPN, a long server name, GREASE in supported_versions, and
// lengths that disagree.
func TestTLSHelloFields(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tt := range []struct {
		name       string
		exts       []byte
		sni        string
		sniCut     bool
		alpn       ALPNSet
		version    uint16
		extensions HelloParse
	}{
		{"tds 8", concat(extSNI("sql01.corp"), extALPNList("tds/8.0")), "sql01.corp", false, ALPNTDS8, 0x0303, HelloComplete},
		{"grpc", concat(extALPNList("h2")), "", false, ALPNH2, 0x0303, HelloComplete},
		{"other alpn", concat(extALPNList("dot", "imap")), "", false, ALPNOther, 0x0303, HelloComplete},
		{"long name", extSNI(long), long[:maxSNI], true, 0, 0x0303, HelloComplete},
		{"grease", []byte{0x00, 0x2b, 0x00, 0x07, 0x06, 0x7a, 0x7a, 0x03, 0x04, 0x03, 0x03}, "", false, 0, 0x0304, HelloComplete},
		{"bad sni list length", []byte{0x00, 0x00, 0x00, 0x05, 0x00, 0x09, 0x00, 0x00, 0x00}, "", false, 0, 0x0303, HelloMalformed},
		{"extension past the end", []byte{0x00, 0x10, 0x00, 0x40, 0x00}, "", false, 0, 0x0303, HelloMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hello := clientHello(tt.exts)
			var id Identification
			Identify(TCP, hello, len(hello), &id)
			h := &id.TLS
			if id.App != AppTLS || string(h.SNI()) != tt.sni || h.SNICut != tt.sniCut || h.ALPN != tt.alpn ||
				h.Version != tt.version || h.Extensions != tt.extensions {
				t.Errorf("got %v sni %q cut %v alpn %v version %#x extensions %v", id.App, h.SNI(), h.SNICut, h.ALPN, h.Version, h.Extensions)
			}
		})
	}
	many := make([]string, 20)
	for i := range many {
		many[i] = "proto-" + strings.Repeat("x", i)
	}
	hello := clientHello(extALPNList(many...))
	var id Identification
	Identify(TCP, hello, len(hello), &id)
	if !id.TLS.ALPNCut || id.TLS.NumALPN() == 0 || id.TLS.NumALPN() >= len(many) || string(id.TLS.ALPNName(0)) != "proto-" {
		t.Errorf("many ALPN names: cut %v, kept %d, first %q", id.TLS.ALPNCut, id.TLS.NumALPN(), id.TLS.ALPNName(0))
	}
}

// clientHello builds a TLS 1.2 ClientHello record with the extensions.
func clientHello(exts []byte) []byte {
	body := []byte{0x03, 0x03}
	body = append(body, make([]byte, 32)...)    // random
	body = append(body, 0)                      // session id
	body = append(body, 0x00, 0x02, 0x13, 0x01) // one cipher suite
	body = append(body, 0x01, 0x00)             // null compression
	body = binary.BigEndian.AppendUint16(body, uint16(len(exts)))
	body = append(body, exts...)
	hs := append([]byte{tlsClientHello, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	rec := []byte{tlsContentHandshake, 0x03, 0x01}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}

func extSNI(name string) []byte {
	entry := append([]byte{0}, binary.BigEndian.AppendUint16(nil, uint16(len(name)))...)
	entry = append(entry, name...)
	list := binary.BigEndian.AppendUint16(nil, uint16(len(entry)))
	return extension(extServerName, append(list, entry...))
}

func extALPNList(names ...string) []byte {
	var entries []byte
	for _, n := range names {
		entries = append(append(entries, byte(len(n))), n...)
	}
	return extension(extALPN, append(binary.BigEndian.AppendUint16(nil, uint16(len(entries))), entries...))
}

func extension(typ uint16, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func TestAppNames(t *testing.T) {
	seen := map[string]bool{}
	for a := App(0); a < numApps; a++ {
		n := a.String()
		if n == "" || seen[n] {
			t.Errorf("App %d: name %q empty or repeated", a, n)
		}
		seen[n] = true
	}
	for _, want := range []string{"tls", "http2", "grpc", "http", "tds", "amqp", "smb", "netbios-ssn", "dcerpc", "ldap", "kerberos", "unknown"} {
		if !seen[want] {
			t.Errorf("no App says %q", want)
		}
	}
	if numApps > 32 {
		t.Errorf("%d apps do not fit an AppSet", numApps)
	}
}
