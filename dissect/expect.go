package dissect

// AppSet is a set of App values (bit a for App a).
type AppSet uint32

// Has reports whether a is in the set.
func (s AppSet) Has(a App) bool { return a < numApps && s&(1<<a) != 0 }

// With returns the set with a added.
func (s AppSet) With(a App) AppSet { return s | 1<<a }

func appSetOf(apps ...App) AppSet {
	var s AppSet
	for _, a := range apps {
		s = s.With(a)
	}
	return s
}

// Expectation is what a documented server port may carry.
type Expectation struct {
	// Apps are the protocols the port may carry; empty when the
	// product's protocol there is not public, so nothing is expected.
	Apps AppSet
	// ALPN, when set, is what a TLS ClientHello on the port should offer
	// (one of): a hello that offers none of them is worth a warning, not
	// a mismatch (research notes 2.3: "tls without ALPN is reported as
	// tls").
	ALPN ALPNSet
	// Note says why, where the documents leave it open.
	Note string
}

// Mismatch reports whether an identified protocol contradicts the
// expectation: the port expects something, the payload was recognised
// (not AppNone, not AppUnknown), and it is not among the expected. An
// unknown payload never mismatches: encrypted or proprietary traffic must
// not raise alerts.
func (e Expectation) Mismatch(a App) bool {
	return e.Apps != 0 && a != AppNone && a != AppUnknown && !e.Apps.Has(a)
}

// portExpectation is the expectation of the ports low-high of one rule.
type portExpectation struct {
	low, high uint16
	Expectation
}

// The expectations the rules share.
var (
	expectDCERPC = Expectation{Apps: appSetOf(AppDCERPC)}
	// gRPC over TLS always offers h2 (grpc-go refuses a peer without
	// ALPN since v1.67); cleartext gRPC starts with the h2c preface,
	// which says http2 until a HEADERS frame says grpc. Whether Threat
	// Prevention runs its gRPC on 3740/3741 over TLS is not documented
	// (the product page says "gRPC / TCP"), so both are accepted, and the
	// app reported tells the administrator which one the site uses.
	expectGRPC = Expectation{Apps: appSetOf(AppTLS, AppHTTP2, AppGRPC), ALPN: ALPNH2,
		Note: "gRPC: TLS (ALPN h2) or cleartext HTTP/2; which one the product uses is not documented"}
	// TDS 7.x starts with a cleartext PRELOGIN; TDS 8.0 (SQL Server 2022
	// strict encryption) with a TLS ClientHello offering tds/8.0.
	expectTDS   = Expectation{Apps: appSetOf(AppTDS, AppTLS), ALPN: ALPNTDS8}
	expectSSRP  = Expectation{Apps: appSetOf(AppSSRP)}
	expectTLS   = Expectation{Apps: appSetOf(AppTLS)}
	expectHTTP  = Expectation{Apps: appSetOf(AppHTTP)}
	expectNBSS  = Expectation{Apps: appSetOf(AppNetBIOSSession, AppSMB)}
	expectSMB   = Expectation{Apps: appSetOf(AppSMB, AppNetBIOSSession), Note: "a NetBIOS keepalive may open a direction on 445 too"}
	expectNBNS  = Expectation{Apps: appSetOf(AppNBNS)}
	expectNBDGM = Expectation{Apps: appSetOf(AppNBDGM)}
	expectNone  = Expectation{Note: "the product's own protocol here is not public: no expectation"}
	// RPC on 135 and 139 (named pipes over SMB) and the dynamic range.
	netapp7RPC = []portExpectation{
		{135, 135, expectDCERPC},
		{139, 139, expectNBSS},
		{49152, 65535, expectDCERPC},
	}
)

// ruleExpectations holds, by rule id of the embedded matrix
// (policy/matrix.yaml), the expectation of each of its server ports
// (research notes 2.3). A rule of another matrix, or a site's own, has no
// entry.
var ruleExpectations = map[string][]portExpectation{
	"agent-em-grpc":      {{3741, 3741, expectGRPC}},
	"console-em-grpc":    {{3740, 3740, expectGRPC}},
	"em-sql-tds":         {{1433, 1433, expectTDS}},
	"em-sql-browser":     {{1434, 1434, expectSSRP}},
	"em-agent-wmi-rpc":   {{135, 135, expectDCERPC}},
	"em-agent-wmi-dcom":  {{1024, 65535, expectDCERPC}},
	"tm-console-http":    {{8080, 8080, Expectation{Apps: appSetOf(AppHTTP, AppTLS)}}},
	"tm-dc-kerberos":     {{88, 88, Expectation{Apps: appSetOf(AppKerberos)}}},
	"tm-dc-rpc-epm":      {{135, 135, expectDCERPC}},
	"tm-dc-ldap":         {{389, 389, Expectation{Apps: appSetOf(AppLDAP), Note: "StartTLS begins in LDAP; a SASL-wrapped bind reads as ldap, low confidence"}}},
	"tm-dc-ldaps":        {{636, 636, expectTLS}},
	"tm-dc-rpc-dynamic":  {{49152, 65535, expectDCERPC}},
	"tm-sql-tds":         {{1433, 1433, expectTDS}},
	"tm-sql-browser":     {{1434, 1434, expectSSRP}},
	"am-agent":           {{4498, 4498, expectNone}},
	"celerra-cee-rpc":    {{49152, 65535, expectDCERPC}},
	"cee-agent-rpc":      {{49152, 65535, expectDCERPC}},
	"isilon-cee":         {{12228, 12228, expectNone}},
	"unity-cee-rpc":      {{49152, 65535, expectDCERPC}},
	"agent-nasuni-api":   {{8443, 8443, expectTLS}},
	"nasuni-agent-amqp":  {{5671, 5671, Expectation{Apps: appSetOf(AppTLS), Note: "AMQP over TLS: the AMQP inside is not visible"}}},
	"agent-netapp7-rpc":  netapp7RPC,
	"netapp7-agent-rpc":  netapp7RPC,
	"agent-netapp7-smb":  {{445, 445, expectSMB}},
	"netapp7-agent-smb":  {{445, 445, expectSMB}},
	"agent-netapp7-nbns": {{137, 137, expectNBNS}},
	"netapp7-agent-nbns": {{137, 137, expectNBNS}},
	// 138 carries one-way datagrams, but a broadcast of the browser
	// service is what it carries either way.
	"agent-netapp7-nbdgm":        {{138, 138, expectNBDGM}},
	"netapp7-agent-nbdgm":        {{138, 138, expectNBDGM}},
	"agent-netapp7-ontapi-http":  {{80, 80, expectHTTP}},
	"agent-netapp7-ontapi-https": {{443, 443, expectTLS}},
	"agent-netappc-ontapi-http":  {{80, 80, expectHTTP}},
	"agent-netappc-ontapi-https": {{443, 443, expectTLS}},
	"netappc-agent-fpolicy":      {{9999, 9999, expectNone}},
	"agent-panzura-api":          {{443, 443, expectTLS}},
	// Panzura documents "AMQP" on 4497 but not whether it is wrapped in
	// TLS (5671 is AMQP's TLS port, 4497 is Panzura's own): accept both.
	"panzura-agent-amqp": {{4497, 4497, Expectation{Apps: appSetOf(AppAMQP, AppTLS),
		Note: "AMQP; whether Panzura wraps it in TLS is not documented"}}},
	// Threat Manager 3.0 documents 10001 as the AMQP event stream
	// ("AMPQ" in its port table); TLS is accepted as for any AMQP.
	// 10000 over TCP is not documented at all.
	"agent-tm-tcp": {
		{10000, 10000, expectNone},
		{10001, 10001, Expectation{Apps: appSetOf(AppAMQP, AppTLS), Note: "AMQP per Threat Manager 3.0's port table"}},
	},
	"agent-tm-events-udp": {{10001, 10001, expectNone}},
}

// ExpectedApps returns what a flow matched to the matrix rule ruleID may
// carry on its server port. ok is false when the table does not know the
// rule or port (a rule of another matrix, a site's own): then nothing is
// expected.
func ExpectedApps(ruleID string, port uint16) (e Expectation, ok bool) {
	for _, pe := range ruleExpectations[ruleID] {
		if port >= pe.low && port <= pe.high {
			return pe.Expectation, true
		}
	}
	return Expectation{}, false
}
