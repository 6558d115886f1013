package dissect

import (
	"testing"
	"unsafe"
)

// hotPaths are the calls the packet path makes, each on its happy path.
// TestZeroAllocations and the benchmarks share them.
func hotPaths() []struct {
	name string
	run  func()
} {
	var conn RPCConn
	var rpc RPCResult
	conversation := func(frames ...*corpusFrame) func() {
		return func() {
			conn.Reset()
			for _, f := range frames {
				conn.Feed(f.from(), f.seq, f.payload, f.payloadLen, &rpc)
			}
		}
	}
	var ssrp SSRPResponse
	ssrpData := svrResp(sqlExpressData)
	var req SSRPRequest
	reqData := []byte("\x04SQLEXPRESS\x00")
	var id Identification
	identify := func(f *corpusFrame) func() {
		return func() { Identify(f.transport, f.payload, f.payloadLen, &id) }
	}
	return []struct {
		name string
		run  func()
	}{
		{"EPM/NDR conversation", conversation(&mapi397, &mapi398, &mapi399, &mapi400)},
		{"EPM/NDR answer alone", conversation(&mapi400)},
		{"EPM/NDR64 conversation", conversation(&dcshadow24, &dcshadow25, &dcshadow26, &dcshadow27)},
		{"EPM/NDR64 answer alone", conversation(&dcshadow27)},
		{"EPM/two towers and auth", conversation(&zerologon1, &zerologon2, &zerologon3, &zerologon4, &zerologon5)},
		{"EPM/error status", conversation(&dcshadow43, &dcshadow44, &dcshadow45, &dcshadow46)},
		{"DCOM/activation conversation", conversation(&wmi18, &wmi19, &wmi21, &wmi22, &wmi23, &wmi24, &wmi25)},
		{"DCOM/answer alone", conversation(&wmi25)},
		{"SSRP/response", func() { ParseSSRPResponse(ssrpData, &ssrp) }},
		{"SSRP/request", func() { ParseSSRPRequest(reqData, &req) }},
		{"Identify/tls client hello", identify(&tls13ClientHello)},
		{"Identify/tls server hello", identify(&tls13ServerHello)},
		{"Identify/http2 preface", identify(&h2PrefaceNghttp2)},
		{"Identify/grpc mid-stream", identify(&grpcClientMidstream)},
		{"Identify/http request", identify(&httpRequest)},
		{"Identify/tds prelogin", identify(&tdsPreloginTDS7)},
		{"Identify/amqp", identify(&amqpHeader091)},
		{"Identify/smb2", identify(&smb2NegotiateResponse)},
		{"Identify/netbios session", identify(&nbssSessionRequestWin10)},
		{"Identify/dcerpc bind", identify(&dcshadow24)},
		{"Identify/ldap", identify(&ldapBindResponseWindows)},
		{"Identify/kerberos", identify(&krbASReqTCP)},
		{"Identify/nbns", identify(&nbnsQuery)},
		{"Identify/unknown", identify(&corpusFrame{transport: TCP, payload: []byte("SSH-2.0-OpenSSH_9.2p1\r\n"), payloadLen: 23})},
		{"ExpectedApps", func() { ExpectedApps("tm-dc-rpc-dynamic", 49667) }},
	}
}

// TestZeroAllocations: the parsers allocate nothing per call (the packet
// path's promise, DESIGN.md "Performance design").
func TestZeroAllocations(t *testing.T) {
	for _, p := range hotPaths() {
		if n := testing.AllocsPerRun(100, p.run); n != 0 {
			t.Errorf("%s: %.1f allocations per call", p.name, n)
		}
	}
}

func BenchmarkHotPaths(b *testing.B) {
	for _, p := range hotPaths() {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.run()
			}
		})
	}
}

// TestStateSizes keeps the per-connection state and the reused results
// as small as the package documentation says: a flow table keeps one
// RPCConn per connection to 135 in a pool.
func TestStateSizes(t *testing.T) {
	for _, s := range []struct {
		name      string
		size, max uintptr
	}{
		{"RPCConn", unsafe.Sizeof(RPCConn{}), 3 << 10},
		{"Identification", unsafe.Sizeof(Identification{}), 384},
		{"RPCResult", unsafe.Sizeof(RPCResult{}), 4 << 10},
	} {
		if s.size > s.max {
			t.Errorf("%s is %d bytes, more than %d", s.name, s.size, s.max)
		}
	}
}
