package dissect

import (
	"encoding/binary"
	"testing"
)

// Every parser here reads bytes from the network: whatever they are, it
// must answer without a panic, in time bounded by the input's length, with
// results inside their bounds. The seeds are real frames of the shared
// corpus (testdata/fuzz/<Target>/seed-*, written by TestFuzzSeeds from
// the corpus); crashers the fuzzer found sit beside them under their hash
// names and run with every `go test`.

// A FuzzEPM input is a conversation: records of a control byte, a
// big-endian u16 length and that many payload bytes. Control bits:
const (
	fuzzFromServer = 1 << iota // sent by the endpoint mapper
	fuzzGap                    // seven sequence numbers were lost before it
	fuzzCut                    // a snap length cut it: 100 more bytes were sent
	fuzzResent                 // a retransmission of the previous segment's start
)

// fuzzRecord appends a record to a FuzzEPM input.
func fuzzRecord(b []byte, ctl byte, payload []byte) []byte {
	b = append(b, ctl)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

func FuzzEPM(f *testing.F) {
	// The corpus seeds are whole conversations; these add what the corpus
	// lacks: an answer in three fragments, an answer split mid-header, a
	// gap, a cut and a retransmission.
	var in []byte
	for _, fr := range []*corpusFrame{&dcshadow24, &dcshadow25, &dcshadow26} {
		in = fuzzRecord(in, byte(fr.from()-1), fr.payload)
	}
	for _, fr := range fragment(dcshadow27.payload, 40, 100) {
		in = fuzzRecord(in, fuzzFromServer, fr)
	}
	f.Add(in)
	in = nil
	in = fuzzRecord(in, 0, mapi399.payload)
	in = fuzzRecord(in, fuzzFromServer, mapi400.payload[:10])
	in = fuzzRecord(in, fuzzFromServer, mapi400.payload[10:])
	in = fuzzRecord(in, fuzzFromServer|fuzzResent, mapi400.payload[:60])
	in = fuzzRecord(in, fuzzFromServer|fuzzGap, mapi705.payload)
	in = fuzzRecord(in, fuzzFromServer|fuzzCut, mapi705.payload[:90])
	f.Add(in)
	f.Fuzz(func(t *testing.T, in []byte) {
		var c RPCConn
		var r RPCResult
		var seq [2]uint32
		var last [2]uint32
		for len(in) >= 3 {
			ctl := in[0]
			n := min(int(binary.BigEndian.Uint16(in[1:])), len(in)-3)
			payload := in[3 : 3+n]
			in = in[3+n:]
			dir, from := 0, SideClient
			if ctl&fuzzFromServer != 0 {
				dir, from = 1, SideServer
			}
			if ctl&fuzzGap != 0 {
				seq[dir] += 7
			}
			declared := n
			if ctl&fuzzCut != 0 {
				declared += 100
			}
			s := seq[dir]
			if ctl&fuzzResent != 0 {
				s = last[dir]
			} else {
				last[dir] = s
				seq[dir] += uint32(declared)
			}
			c.Feed(from, s, payload, declared, &r)
			checkRPCResult(t, &r)
		}
	})
}

func checkRPCResult(t *testing.T, r *RPCResult) {
	t.Helper()
	if r.NumEndpoints < 0 || r.NumEndpoints > len(r.Endpoints) {
		t.Fatalf("%d endpoints", r.NumEndpoints)
	}
	for i := range r.NumEndpoints {
		e := &r.Endpoints[i]
		if e.Port == 0 || (e.Source != SourceEPM && e.Source != SourceDCOM) || (e.Transport != TCP && e.Transport != UDP) {
			t.Fatalf("endpoint %d: %+v", i, e)
		}
		if int(e.hostLen) > maxHost || (e.Source == SourceDCOM && e.hostLen == 0) {
			t.Fatalf("endpoint %d: host length %d", i, e.hostLen)
		}
		if e.Addr.IsValid() && (!e.Addr.Is4() || e.Addr.IsUnspecified()) {
			t.Fatalf("endpoint %d: address %s", i, e.Addr)
		}
	}
	for _, n := range []int{r.Dropped, r.Maps, r.Activations, r.Encrypted, r.Faults, r.Errors, r.Malformed, r.Truncated, r.Unsynced, r.Retransmitted} {
		if n < 0 {
			t.Fatalf("negative count in %+v", r)
		}
	}
}

// FuzzEPMStub decodes an ept_map answer's stub in a given syntax (0
// unknown, 1 NDR, 2 NDR64) and byte order, and reads it as a request's and
// as a tower too.
func FuzzEPMStub(f *testing.F) {
	f.Add(mapi400.payload[0x48:0x48+75], uint8(SyntaxNDR), false) // a tower alone
	f.Add(dcshadow27.payload[rpcCallHeaderLen:], uint8(SyntaxNDR64), true)
	f.Fuzz(func(t *testing.T, stub []byte, syntax uint8, bigEndian bool) {
		var r RPCResult
		decodeMapResponse(stub, Syntax(syntax%3), bigEndian, UUID{}, false, &r)
		checkRPCResult(t, &r)
		if r.NumEndpoints > 0 && r.Maps != 1 {
			t.Fatalf("endpoints without a decoded map: %+v", r)
		}
		mapRequestInterface(stub, Syntax(syntax%3), bigEndian)
		if tw, ok := parseTower(stub); ok && tw.learnable() && tw.port == 0 {
			t.Fatal("a learnable tower with port 0")
		}
	})
}

func FuzzDCOM(f *testing.F) {
	// The corpus seed is WMI's activation answer; these add a DUALSTRINGARRAY
	// of bindings of every kind.
	f.Add(concat([]byte{5, 0, 3, 0}, utf16Binding(7, "172.16.66.36[49670]"), utf16Binding(7, "fe80::1%12[49670]"),
		utf16Binding(0x0f, `\\\\HOST[\\PIPE\\atsvc]`), []byte{0, 0}, utf16Binding(0x0a, "NT AUTHORITY\\SYSTEM")))
	f.Fuzz(func(t *testing.T, stub []byte) {
		var r RPCResult
		n := scanStringBindings(stub, nil)
		if m := scanStringBindings(stub, &r); m != n {
			t.Fatalf("counted %d, then %d", n, m)
		}
		checkRPCResult(t, &r)
		if r.NumEndpoints+r.Dropped != n {
			t.Fatalf("%d found, %d kept and %d dropped", n, r.NumEndpoints, r.Dropped)
		}
	})
}

func FuzzSQLBrowser(f *testing.F) {
	// The corpus has no SQL Browser traffic: seeds from MC-SQLR's grammar.
	f.Add(svrResp(sqlExpressData))
	f.Add(svrResp(sqlExpressData + "ServerName;SQL01;InstanceName;TP;IsClustered;Yes;Version;16.0.1000.6;np;\\\\SQL01\\pipe\\x;tcp;50123;;"))
	f.Add([]byte{0x05, 0x06, 0x00, 0x01, 0x32, 0xdf})
	f.Add([]byte("\x04SQLEXPRESS\x00"))
	f.Add([]byte("\x0f\x01SQLEXPRESS\x00"))
	f.Add([]byte{0x02})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var resp SSRPResponse
		if ParseSSRPResponse(payload, &resp) {
			if resp.NumInstances > maxInstances || (resp.DAC && resp.DACPort == 0) {
				t.Fatalf("%d instances, dac %v port %d", resp.NumInstances, resp.DAC, resp.DACPort)
			}
			for i := range resp.NumInstances {
				in := &resp.Instances[i]
				if int(in.nameLen) > maxInstanceName || int(in.serverLen) > maxServerName || int(in.versionLen) > maxVersion ||
					(in.BadPort && in.TCPPort != 0) {
					t.Fatalf("instance %d: %+v", i, in)
				}
			}
		} else if resp.NumInstances != 0 || resp.DAC {
			t.Fatalf("not a response, yet %d instances", resp.NumInstances)
		}
		var req SSRPRequest
		if ParseSSRPRequest(payload, &req) != (req.Kind != SSRPInvalid) || int(req.instanceLen) > maxInstanceName {
			t.Fatalf("request %+v", req)
		}
		var id Identification
		Identify(UDP, payload, len(payload), &id)
	})
}

// FuzzApp identifies a payload of either transport; extra bytes beyond
// those given were sent but not captured (a snap length).
func FuzzApp(f *testing.F) {
	// The corpus seeds are the first payloads of identifyCases; these
	// add hellos and prefaces the corpus lacks.
	f.Add(uint8(TCP), clientHello(concat(extSNI("em01.corp"), extALPNList("h2", "tds/8.0"))), uint16(0))
	f.Add(uint8(TCP), []byte(h2Preface+"\x00\x00\x00\x04\x00\x00\x00\x00\x00"), uint16(0))
	f.Add(uint8(TCP), []byte("AMQP\x00\x01\x00\x00"), uint16(0))
	f.Add(uint8(UDP), svrResp(sqlExpressData), uint16(0))
	f.Add(uint8(TCP), []byte("71 <165>1 2003-10-11T22:14:15.003Z host app - - - x"), uint16(0))
	f.Fuzz(func(t *testing.T, transport uint8, payload []byte, extra uint16) {
		var id Identification
		tr := TCP
		if transport%2 == 1 {
			tr = UDP
		}
		Identify(tr, payload, len(payload)+int(extra), &id)
		switch {
		case id.App >= numApps || id.Confidence > ConfidenceHigh || id.Sender > SideServer:
			t.Fatalf("out of range: %+v", id)
		case len(payload) == 0 && id.App != AppNone:
			t.Fatalf("empty payload: %v", id.App)
		case len(payload) > 0 && id.App == AppNone:
			t.Fatal("a payload examined says none")
		case id.NeedMore && id.App != AppUnknown:
			t.Fatalf("need more, yet %v", id.App)
		case (id.App == AppUnknown) != (id.Confidence == ConfidenceNone) && len(payload) > 0:
			t.Fatalf("%v with confidence %v", id.App, id.Confidence)
		case id.App != AppTLS && id.TLS.Handshake != 0:
			t.Fatalf("%v with a TLS hello", id.App)
		}
		h := &id.TLS
		if int(h.sniLen) > maxSNI || int(h.alpnLen) > maxALPN || h.NumALPN() > maxALPN/2 {
			t.Fatalf("hello out of bounds: %d %d", h.sniLen, h.alpnLen)
		}
		for i := range h.NumALPN() {
			if len(h.ALPNName(i)) == 0 {
				t.Fatalf("ALPN name %d empty", i)
			}
		}
	})
}
