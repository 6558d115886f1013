package dissect

// App is an application protocol, as Identify names it from the first
// payload of a flow direction. It is one byte so a flow entry can keep it;
// its names are a bounded set, fit for a metric label.
type App uint8

const (
	// AppNone is the zero value: no payload was examined.
	AppNone App = iota
	// AppUnknown: payload was examined and matched nothing (or is too
	// short to tell: Identification.NeedMore).
	AppUnknown
	AppTLS
	// AppHTTP2 is cleartext HTTP/2: the client preface, or a server's
	// SETTINGS frame.
	AppHTTP2
	// AppGRPC is cleartext HTTP/2 whose HEADERS carry content-type
	// application/grpc. gRPC inside TLS is AppTLS (its ALPN says h2).
	AppGRPC
	AppHTTP
	AppTDS
	AppAMQP
	AppSMB
	// AppNetBIOSSession is the NetBIOS session service's own messages
	// (session request, positive and negative responses, keepalive);
	// SMB inside NetBIOS framing is AppSMB.
	AppNetBIOSSession
	AppDCERPC
	AppLDAP
	AppKerberos
	// AppSSRP is the SQL Server Browser (UDP 1434).
	AppSSRP
	// AppNBNS is the NetBIOS name service (UDP 137).
	AppNBNS
	// AppNBDGM is the NetBIOS datagram service (UDP 138).
	AppNBDGM
	AppSyslog
	AppRDP
	numApps
)

var appNames = [numApps]string{
	AppNone:           "none",
	AppUnknown:        "unknown",
	AppTLS:            "tls",
	AppHTTP2:          "http2",
	AppGRPC:           "grpc",
	AppHTTP:           "http",
	AppTDS:            "tds",
	AppAMQP:           "amqp",
	AppSMB:            "smb",
	AppNetBIOSSession: "netbios-ssn",
	AppDCERPC:         "dcerpc",
	AppLDAP:           "ldap",
	AppKerberos:       "kerberos",
	AppSSRP:           "ssrp",
	AppNBNS:           "nbns",
	AppNBDGM:          "nbdgm",
	AppSyslog:         "syslog",
	AppRDP:            "rdp",
}

func (a App) String() string {
	if a < numApps {
		return appNames[a]
	}
	return "invalid"
}

// Confidence says how sure an identification is.
type Confidence uint8

const (
	ConfidenceNone Confidence = iota
	// ConfidenceLow: a short or loose signature that other traffic can
	// produce too (a NetBIOS keepalive, a syslog "<13>", a SASL-wrapped
	// buffer of unknown content). Good for a report, not for an alert.
	ConfidenceLow
	// ConfidenceMedium: the signature matched, but its lengths could not
	// all be checked (the payload was cut, or the flow was caught
	// mid-stream where only a generic frame shape is left).
	ConfidenceMedium
	// ConfidenceHigh: the signature matched and its own lengths and
	// fields agree with each other.
	ConfidenceHigh
)

func (c Confidence) String() string {
	switch c {
	case ConfidenceLow:
		return "low"
	case ConfidenceMedium:
		return "medium"
	case ConfidenceHigh:
		return "high"
	}
	return "none"
}

// Identification is what Identify makes of a payload.
type Identification struct {
	App        App
	Confidence Confidence
	// Sender is the end of a connection that sends such a payload: a
	// ClientHello, a DCE/RPC bind, a request line, a TDS PRELOGIN or a
	// Kerberos AS-REQ only ever comes from the client, their answers from
	// the server. SideEither when both ends send it. For a flow caught
	// mid-stream it tells which end is the client.
	Sender Side
	// NeedMore is set when the payload is shorter than the signature it
	// begins: App is then AppUnknown, never a guess.
	NeedMore bool
	// TLS is the hello read when App is AppTLS (Handshake 0 otherwise).
	TLS TLSHello
}

// match is what one signature makes of a payload.
type match struct {
	app      App
	conf     Confidence
	sender   Side
	needMore bool
}

// Identify names the application protocol of payload, the first payload
// of a flow direction as captured (perhaps cut by a snap length);
// payloadLen is its length by the IP and transport headers. It writes into
// out, which the caller reuses, and keeps nothing.
//
// It reads at most the first TLS record, the first few HTTP/2 frames, the
// first line of HTTP and a few dozen bytes of the others. Signatures are
// tried from the most specific; the first sure match wins, else the most
// confident.
func Identify(tr Transport, payload []byte, payloadLen int, out *Identification) {
	out.App, out.Confidence, out.Sender, out.NeedMore = AppNone, ConfidenceNone, SideEither, false
	out.TLS.reset()
	if payloadLen < len(payload) {
		payload = payload[:payloadLen]
	}
	if len(payload) == 0 {
		return
	}
	var signatures []func([]byte, int, *Identification) match
	switch tr {
	case TCP:
		signatures = tcpSignatures
	case UDP:
		signatures = udpSignatures
	default:
		out.App = AppUnknown
		return
	}
	best := match{app: AppUnknown}
	for _, sig := range signatures {
		m := sig(payload, payloadLen, out)
		if m.needMore {
			best.needMore = true
			continue
		}
		if m.app == AppNone || m.conf <= best.conf {
			continue
		}
		best = match{app: m.app, conf: m.conf, sender: m.sender, needMore: best.needMore}
		if m.conf == ConfidenceHigh {
			break
		}
	}
	out.App, out.Confidence, out.Sender = best.app, best.conf, best.sender
	// A prefix of a signature is only "need more" when nothing matched.
	out.NeedMore = best.app == AppUnknown && best.needMore
	if best.app != AppTLS {
		out.TLS.reset()
	}
}

// The signatures of each transport, most specific first.
var (
	tcpSignatures = []func([]byte, int, *Identification) match{
		identifyTLS,
		identifyDCERPC,
		identifySMB,
		identifyKerberosTCP,
		identifyHTTP2,
		identifyHTTP,
		identifyTDS,
		identifyAMQP,
		identifyLDAP,
		identifyNetBIOSSession,
		identifyRDP,
		identifyLDAPSASL,
		identifySyslog,
	}
	udpSignatures = []func([]byte, int, *Identification) match{
		identifySSRP,
		identifyKerberosUDP,
		identifyLDAP, // CLDAP, the domain controller locator
		identifyNBDGM,
		identifyNBNS,
		identifySyslog,
	}
)

// hasPrefix reports whether b starts with s.
func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// isPrefixOf reports whether b (shorter than s) is how s starts: a payload
// too short to tell.
func isPrefixOf(b []byte, s string) bool {
	return len(b) < len(s) && string(b) == s[:len(b)]
}
