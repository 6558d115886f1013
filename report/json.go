package report

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/dissect"
	"github.com/tpwatch/tpwatch/policy"
)

// JSONWriter writes one JSON object per reported flow (NDJSON). It formats
// by appending into one reused buffer, so a flow costs no allocation.
type JSONWriter struct {
	w     *bufio.Writer
	buf   []byte
	rules []policy.Rule
	all   bool
	err   error
}

// NewJSONWriter writes flows to w. rules resolve FlowRecord.Rule to ids;
// all also reports ignored flows.
func NewJSONWriter(w io.Writer, rules []policy.Rule, all bool) *JSONWriter {
	// 64 KiB: one write a few hundred flows, and little memory.
	return &JSONWriter{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 1024), rules: rules, all: all}
}

// Decided implements classifier.Sink; JSON is written when a flow ends.
func (j *JSONWriter) Decided(*classifier.FlowRecord) {}

// Final implements classifier.Sink.
func (j *JSONWriter) Final(r *classifier.FlowRecord) {
	if j.err != nil || (r.Verdict == classifier.Ignored && !j.all) {
		return
	}
	j.buf = AppendJSON(j.buf[:0], r, j.rules)
	j.buf = append(j.buf, '\n')
	_, j.err = j.w.Write(j.buf)
}

// Flush writes what is buffered and returns the first write error.
func (j *JSONWriter) Flush() error {
	if j.err != nil {
		return j.err
	}
	return j.w.Flush()
}

// AppendJSON appends r as a JSON object to b.
func AppendJSON(b []byte, r *classifier.FlowRecord, rules []policy.Rule) []byte {
	b = append(b, `{"ts_first":"`...)
	b = AppendTimestamp(b, r.First)
	b = append(b, `","ts_last":"`...)
	b = AppendTimestamp(b, r.Last)
	b = append(b, `","transport":"`...)
	b = append(b, r.Transport.String()...)
	b = append(b, `","src_ip":"`...)
	b = appendAddr(b, r.Client)
	b = append(b, `","src_port":`...)
	b = strconv.AppendUint(b, uint64(r.ClientPort), 10)
	b = append(b, `,"dst_ip":"`...)
	b = appendAddr(b, r.Server)
	b = append(b, `","dst_port":`...)
	b = strconv.AppendUint(b, uint64(r.ServerPort), 10)
	b = append(b, `,"src_roles":`...)
	b = appendRoles(b, r.ClientRoles)
	b = append(b, `,"dst_roles":`...)
	b = appendRoles(b, r.ServerRoles)
	b = append(b, `,"rule":"`...)
	if r.Rule >= 0 && int(r.Rule) < len(rules) {
		// Rule ids are validated to [a-z0-9-], so they need no escaping.
		b = append(b, rules[r.Rule].ID...)
	}
	b = append(b, `","verdict":"`...)
	b = append(b, r.Verdict.String()...)
	b = append(b, `","reason":"`...)
	b = append(b, r.Reason.String()...)
	if r.Verdict == classifier.Unexpected {
		b = append(b, `","outcome":"`...)
		b = append(b, r.Outcome.String()...)
	}
	b = append(b, `","conn_state":"`...)
	b = append(b, r.ConnState.String()...)
	b = append(b, `","history":"`...)
	b = append(b, r.History[:r.HistoryLen]...)
	b = append(b, `","packets_out":`...)
	b = strconv.AppendUint(b, r.PacketsOut, 10)
	b = append(b, `,"packets_in":`...)
	b = strconv.AppendUint(b, r.PacketsIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendUint(b, r.BytesOut, 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendUint(b, r.BytesIn, 10)
	if r.ICMP {
		b = append(b, `,"icmp_type":`...)
		b = strconv.AppendUint(b, uint64(r.ICMPType), 10)
		b = append(b, `,"icmp_code":`...)
		b = strconv.AppendUint(b, uint64(r.ICMPCode), 10)
		b = append(b, `,"icmp_src":"`...)
		b = appendAddr(b, r.ICMPSrc)
		b = append(b, '"')
	}
	if r.Evicted {
		b = append(b, `,"evicted":true`...)
	}
	b = append(b, `,"vantage":"`...)
	b = append(b, r.Vantage.String()...)
	b = append(b, '"')
	return append(appendPayloadFields(b, r, rules), '}')
}

// appendPayloadFields appends what payload inspection said of the flow:
// its application protocol (and, on a protocol mismatch, what its port
// should carry), and what explains a port a server announces.
func appendPayloadFields(b []byte, r *classifier.FlowRecord, rules []policy.Rule) []byte {
	for k := payloadApp; k < numPayloadFields; k++ {
		n := len(b)
		b = append(b, ',', '"')
		b = append(b, payloadKeys[k]...)
		b = append(b, '"', ':')
		var ok bool
		if b, ok = appendPayloadField(b, k, r, rules); !ok {
			b = b[:n] // the flow has no such field
		}
	}
	return b
}

// EachPayloadField calls f with the key and the JSON value of each payload
// field the JSON output writes for r, in its order: for the daemon's
// events, which must carry the same fields. value is only valid during
// the call.
func EachPayloadField(r *classifier.FlowRecord, rules []policy.Rule, f func(key string, value []byte)) {
	var value []byte
	for k := payloadApp; k < numPayloadFields; k++ {
		var ok bool
		if value, ok = appendPayloadField(value[:0], k, r, rules); ok {
			f(payloadKeys[k], value)
		}
	}
}

type payloadField int

const (
	payloadApp payloadField = iota
	payloadALPN
	payloadExpected
	payloadRPC
	payloadSQLBrowser
	numPayloadFields
)

var payloadKeys = [...]string{"app", "alpn", "expected_apps", "rpc", "sql_browser"}

// appendPayloadField appends the JSON value of field k of r, and reports
// whether r has the field.
func appendPayloadField(b []byte, k payloadField, r *classifier.FlowRecord, rules []policy.Rule) ([]byte, bool) {
	switch k {
	case payloadApp:
		if r.App == dissect.AppNone {
			return b, false
		}
		b = append(b, '"')
		b = append(b, r.App.String()...)
		return append(b, '"'), true
	case payloadALPN:
		if r.ALPN == 0 {
			return b, false
		}
		b = append(b, '[')
		first := true
		for _, f := range alpnNames {
			if r.ALPN&f.bit == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, f.name...)
			b = append(b, '"')
		}
		return append(b, ']'), true
	case payloadExpected:
		if r.Reason != classifier.ProtocolMismatch || r.Rule < 0 || int(r.Rule) >= len(rules) {
			return b, false
		}
		exp, ok := dissect.ExpectedApps(rules[r.Rule].ID, r.ServerPort)
		if !ok {
			return b, false
		}
		b = append(b, '[')
		first := true
		for a := dissect.AppNone; a < 64; a++ {
			if !exp.Apps.Has(a) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, a.String()...)
			b = append(b, '"')
		}
		return append(b, ']'), true
	case payloadRPC:
		switch r.Via {
		case classifier.ViaRange:
			return append(b, `{"via":"range"}`...), true
		case classifier.ViaEPM, classifier.ViaDCOM:
			b = append(b, `{"via":"`...)
			b = append(b, r.Via.String()...)
			if r.Via == classifier.ViaEPM {
				b = append(b, `","interface":"`...)
				b = append(b, r.Interface.String()...)
			}
			b = append(b, `","announced":"`...)
			b = AppendTimestamp(b, r.AnnouncedAt)
			return append(b, `"}`...), true
		}
	case payloadSQLBrowser:
		if r.Via == classifier.ViaSSRP {
			b = append(b, `{"instance":`...)
			b = appendJSONString(b, r.Instance[:r.InstanceLen])
			b = append(b, `,"announced":"`...)
			b = AppendTimestamp(b, r.AnnouncedAt)
			return append(b, `"}`...), true
		}
	}
	return b, false
}

// alpnNames name the ALPN protocols an ALPNSet flags.
var alpnNames = [...]struct {
	bit  dissect.ALPNSet
	name string
}{{dissect.ALPNH2, "h2"}, {dissect.ALPNHTTP11, "http/1.1"}, {dissect.ALPNTDS8, "tds/8.0"}, {dissect.ALPNOther, "other"}}

// appendJSONString appends text read off the wire as a JSON string: bytes
// that are not printable ASCII are escaped as \u00XX, so the output is
// valid JSON and shows what was there, whatever it was.
func appendJSONString(b, text []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range text {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendAddr(b []byte, a [16]byte) []byte {
	return netip.AddrFrom16(a).Unmap().AppendTo(b)
}

func appendRoles(b []byte, s policy.RoleSet) []byte {
	b = append(b, '[')
	first := true
	for r := policy.Role(1); r < 32; r++ {
		if !s.Has(r) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, r.String()...)
		b = append(b, '"')
	}
	return append(b, ']')
}

// AppendTimestamp appends Unix time ns as RFC 3339 in UTC with all nine
// digits of the fraction ("2006-01-02T15:04:05.000000000Z"): fixed-width
// timestamps sort as text and line up, which time.RFC3339Nano (trailing
// zeros trimmed) does not. It gives what time.Time.AppendFormat gives with
// that layout, at a fraction of the cost (two timestamps a flow were 5-7%
// of a replay): the date comes from the day number by the civil calendar
// arithmetic below rather than by a general layout interpreter.
func AppendTimestamp(b []byte, ns int64) []byte {
	secs, frac := floorDiv(ns, 1e9)
	days, sod := floorDiv(secs, 86400)
	year, month, day := civilDate(days)
	ts := [30]byte{4: '-', 7: '-', 10: 'T', 13: ':', 16: ':', 19: '.', 29: 'Z'}
	putPair(ts[0:], year/100)
	putPair(ts[2:], year%100)
	putPair(ts[5:], month)
	putPair(ts[8:], day)
	putPair(ts[11:], sod/3600)
	putPair(ts[14:], sod/60%60)
	putPair(ts[17:], sod%60)
	ts[20] = byte('0' + frac/1e8)
	frac %= 1e8
	putPair(ts[21:], frac/1e6)
	putPair(ts[23:], frac/1e4%100)
	putPair(ts[25:], frac/100%100)
	putPair(ts[27:], frac%100)
	return append(b, ts[:]...)
}

const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// putPair writes v, in [0, 100), as two digits.
func putPair(b []byte, v int64) {
	b[0], b[1] = digitPairs[2*v], digitPairs[2*v+1]
}

// floorDiv returns the quotient rounded down and the remainder, in [0, d).
func floorDiv(n, d int64) (q, r int64) {
	q, r = n/d, n%d
	if r < 0 {
		q, r = q-1, r+d
	}
	return q, r
}

// civilDate converts days since 1970-01-01 to a proleptic Gregorian date.
// It counts in 400-year eras (146097 days) starting on March 1st, so that
// the leap day is the last day of its year and the months from March on
// have lengths a linear formula gives (153 days for each 5 months).
func civilDate(days int64) (year, month, day int64) {
	const (
		daysPerEra      = 146097
		marchFirstOf0   = 719468 // days from 0000-03-01 to 1970-01-01
		daysPer4Years   = 1461
		daysPer100Years = 36524
	)
	era, doe := floorDiv(days+marchFirstOf0, daysPerEra) // doe: day of era, [0, 146096]
	yoe := (doe - doe/(daysPer4Years-1) + doe/daysPer100Years - doe/(daysPerEra-1)) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100) // day of the March-based year, [0, 365]
	mp := (5*doy + 2) / 153                  // March = 0, ..., February = 11
	day = doy - (153*mp+2)/5 + 1
	month = mp + 3
	year = era*400 + yoe
	if month > 12 {
		month -= 12
		year++
	}
	return year, month, day
}
