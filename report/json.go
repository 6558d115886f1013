package report

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/tpwatch/tpwatch/classifier"
	"github.com/tpwatch/tpwatch/policy"
)

// rfc3339Nano keeps all nine digits: fixed-width timestamps sort as text
// and line up, which time.RFC3339Nano (trailing zeros trimmed) does not.
const rfc3339Nano = "2006-01-02T15:04:05.000000000Z07:00"

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
	return &JSONWriter{w: bufio.NewWriterSize(w, 256<<10), buf: make([]byte, 0, 1024), rules: rules, all: all}
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
	b = time.Unix(0, r.First).UTC().AppendFormat(b, rfc3339Nano)
	b = append(b, `","ts_last":"`...)
	b = time.Unix(0, r.Last).UTC().AppendFormat(b, rfc3339Nano)
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
	}
	if r.Evicted {
		b = append(b, `,"evicted":true`...)
	}
	return append(b, '}')
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
