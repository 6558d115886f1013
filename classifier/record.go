package classifier

import "github.com/tpwatch/tpwatch/policy"

// Verdict is what tpwatch concludes about a flow. The zero value means
// not decided yet.
type Verdict uint8

const (
	VerdictUndecided Verdict = iota
	Allowed                  // a rule matches and the flow worked
	Blocked                  // a rule matches and the flow failed
	Unexpected               // no enabled rule allows it, and it concerns Threat Prevention
	Ignored                  // unrelated to Threat Prevention
	Pending                  // an attempt still inside its timeout at the end of a replay
	numVerdicts
)

// NumVerdicts bounds the Verdict values: arrays indexed by verdict (the
// metrics' counters) have this length, and so follow a verdict added here.
const NumVerdicts = int(numVerdicts)

var verdictNames = [...]string{"", "allowed", "blocked", "unexpected", "ignored", "pending"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "invalid"
}

// Reason says why a flow got its verdict. The zero value is no reason
// (allowed, ignored and pending flows).
type Reason uint8

const (
	ReasonNone         Reason = iota
	Refused                   // blocked: RST in answer to the SYN
	ICMPUnreachable           // blocked: ICMP/ICMPv6 destination unreachable quoting the flow
	NoResponse                // blocked: nothing came back before the attempt timeout
	FeatureDisabled           // unexpected: a rule matches but its feature is off
	UnauthorizedClient        // unexpected: a documented server port, a client the rule does not admit
	NoRule                    // unexpected: both ends known, no rule for this port and these roles
	NotProduct                // ignored: both ends known, but neither a product port nor a product host
	SiteIgnore                // ignored: the site config's ignore list matches it
	numReasons
)

// NumReasons bounds the Reason values (ReasonNone included): arrays
// indexed by reason have this length, and so follow a reason added here.
const NumReasons = int(numReasons)

// A reason's name (its metric label and JSON value) and the verdict it
// explains.
var (
	reasonNames    = [...]string{"", "refused", "icmp_unreachable", "no_response", "feature_disabled", "unauthorized_client", "no_rule", "not_product", "site_ignore"}
	reasonVerdicts = [...]Verdict{VerdictUndecided, Blocked, Blocked, Blocked, Unexpected, Unexpected, Unexpected, Ignored, Ignored}
)

// One name a verdict, one name and one verdict a reason: a constant
// conversion of a negative number to uint does not compile, so a verdict
// or a reason added to the lists above without its entries fails the
// build here.
const (
	_ = uint(len(verdictNames)-NumVerdicts) + uint(NumVerdicts-len(verdictNames))
	_ = uint(len(reasonNames)-NumReasons) + uint(NumReasons-len(reasonNames))
	_ = uint(len(reasonVerdicts)-NumReasons) + uint(NumReasons-len(reasonVerdicts))
)

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "invalid"
}

// Verdict returns the verdict the reason explains (VerdictUndecided for
// ReasonNone, which goes with allowed, ignored and pending flows).
func (r Reason) Verdict() Verdict {
	if int(r) < len(reasonVerdicts) {
		return reasonVerdicts[r]
	}
	return VerdictUndecided
}

// Outcome says whether a flow worked, and if not, how it failed. Every
// unexpected flow has one: an unauthorized client that got in and one that
// was turned away are two different findings.
type Outcome uint8

const (
	OutcomeNone            Outcome = iota // not known yet
	OutcomeWorked                         // the server answered
	OutcomeRefused                        // the server reset the SYN
	OutcomeNoResponse                     // nothing came back before the attempt timeout
	OutcomeICMPUnreachable                // an ICMP destination unreachable quoted it
	OutcomeUnknown                        // the flow ended with nothing that shows either
	numOutcomes
)

// NumOutcomes bounds the Outcome values (OutcomeNone included).
const NumOutcomes = int(numOutcomes)

var outcomeNames = [...]string{"", "worked", "refused", "no_response", "icmp_unreachable", "unknown"}

const _ = uint(len(outcomeNames)-NumOutcomes) + uint(NumOutcomes-len(outcomeNames))

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "invalid"
}

// FlowRecord is the public view of one flow, handed to sinks. It holds no
// pointers into the flow table; a sink must copy what it keeps, because
// the record is reused after the call returns.
type FlowRecord struct {
	First, Last int64 // Unix nanoseconds of the first and last packet
	Transport   policy.Transport

	// Client and Server are IPv4-mapped for IPv4 (see capture.Packet).
	Client, Server         [16]byte
	ClientPort, ServerPort uint16
	ClientRoles            policy.RoleSet
	ServerRoles            policy.RoleSet

	// Rule is the index of the matched rule in the policy's rule list, or
	// -1. Unexpected flows carry the rule they came closest to
	// (feature_disabled, unauthorized_client), else -1.
	Rule    int32
	Verdict Verdict
	Reason  Reason

	ConnState ConnState
	// History is Zeek's connection history string: upper case for the
	// client (originator), lower case for the server (responder).
	History    [16]byte
	HistoryLen uint8

	PacketsOut, PacketsIn uint64 // client→server, server→client
	BytesOut, BytesIn     uint64 // IP bytes, as Zeek's orig_ip_bytes

	// Outcome is how the flow went: worked, or how it failed (set once the
	// flow is decided; an allowed flow worked, a blocked one failed as its
	// reason says).
	Outcome Outcome

	// ICMP is set when an ICMP/ICMPv6 error decided the flow: its type and
	// code, and ICMPSrc, the host that sent it (the filtering device a
	// network team needs to find).
	ICMP               bool
	ICMPType, ICMPCode uint8
	ICMPSrc            [16]byte

	// Evicted is set when the flow table dropped the flow to make room.
	Evicted bool
}

// HistoryString returns the history as a string (it allocates; for sinks).
func (r *FlowRecord) HistoryString() string { return string(r.History[:r.HistoryLen]) }

// Sink receives flows from the classifier. Decided is called once per flow,
// as soon as its verdict is known (metrics count there); Final once per
// flow, when it ends (reports are written there). Both are called from the
// goroutine that owns the flow's table shard.
type Sink interface {
	Decided(r *FlowRecord)
	Final(r *FlowRecord)
}

// ConnState is Zeek's conn_state summary of a TCP or UDP flow.
type ConnState uint8

const (
	StateNone ConnState = iota
	S0                  // attempt seen, no reply
	S1                  // established, not terminated
	SF                  // normal establishment and termination
	REJ                 // attempt rejected
	S2                  // established, originator closed, no reply
	S3                  // established, responder closed, no reply
	RSTO                // established, originator aborted
	RSTR                // responder sent a RST
	RSTOS0              // originator sent SYN then RST, no SYN-ACK
	RSTRH               // responder sent SYN-ACK then RST, no SYN seen
	SH                  // originator sent SYN then FIN, no SYN-ACK
	SHR                 // responder sent SYN-ACK then FIN, no SYN seen
	OTH                 // no SYN, mid-stream traffic
)

var connStateNames = [...]string{"", "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"}

func (s ConnState) String() string {
	if int(s) < len(connStateNames) {
		return connStateNames[s]
	}
	return "invalid"
}
