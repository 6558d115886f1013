package dissect

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// The corpus holds no SQL Server Browser traffic (research notes 1.11):
// these bytes are built from MC-SQLR's grammar, as the notes' examples.

// svrResp builds an SVR_RESP around data.
func svrResp(data string) []byte {
	b := []byte{ssrpResponse, 0, 0}
	binary.LittleEndian.PutUint16(b[1:], uint16(len(data)))
	return append(b, data...)
}

const sqlExpressData = "ServerName;SQL01;InstanceName;SQLEXPRESS;IsClustered;No;Version;15.0.2000.5;tcp;49733;;"

func TestSSRPRequest(t *testing.T) {
	for _, tt := range []struct {
		in       []byte
		ok       bool
		kind     SSRPKind
		instance string
	}{
		// CLNT_UCAST_INST "SQLEXPRESS" (research notes 1.9, 12 bytes).
		{[]byte("\x04SQLEXPRESS\x00"), true, SSRPUnicastInstance, "SQLEXPRESS"},
		{[]byte("\x0f\x01SQLEXPRESS\x00"), true, SSRPUnicastDAC, "SQLEXPRESS"},
		{[]byte{0x02}, true, SSRPBroadcastEx, ""},
		{[]byte{0x03}, true, SSRPUnicastEx, ""},
		{[]byte{0x03, 0x00}, false, SSRPInvalid, ""},
		{[]byte("\x04SQLEXPRESS"), false, SSRPInvalid, ""},                             // no NUL
		{[]byte("\x0f\x02SQLEXPRESS\x00"), false, SSRPInvalid, ""},                     // DAC version 2
		{append([]byte{4}, strings.Repeat("A", 32)+"\x00"...), false, SSRPInvalid, ""}, // 33 bytes with the NUL
		{[]byte("\x04A;B\x00"), false, SSRPInvalid, ""},
		{nil, false, SSRPInvalid, ""},
	} {
		var r SSRPRequest
		ok := ParseSSRPRequest(tt.in, &r)
		if ok != tt.ok || r.Kind != tt.kind || string(r.Instance()) != tt.instance {
			t.Errorf("ParseSSRPRequest(%q) = %v %v %q; want %v %v %q", tt.in, ok, r.Kind, r.Instance(), tt.ok, tt.kind, tt.instance)
		}
	}
}

// ssrpSummary formats a response as tests compare it.
func ssrpSummary(r *SSRPResponse) string {
	var b strings.Builder
	if r.DAC {
		fmt.Fprintf(&b, "dac %d;", r.DACPort)
	}
	for i := range r.NumInstances {
		in := &r.Instances[i]
		fmt.Fprintf(&b, "%s/%s v%s clustered=%v tcp=%d", in.ServerName(), in.Name(), in.Version(), in.Clustered, in.TCPPort)
		if in.BadPort {
			b.WriteString(" badport")
		}
		if in.Cut {
			b.WriteString(" cut")
		}
		b.WriteString(";")
	}
	fmt.Fprintf(&b, " malformed=%d truncated=%v dropped=%d", r.Malformed, r.Truncated, r.Dropped)
	return b.String()
}

func TestSSRPResponse(t *testing.T) {
	two := "ServerName;SQL01;InstanceName;MSSQLSERVER;IsClustered;No;Version;16.0.1000.6;tcp;1433;np;\\\\SQL01\\pipe\\sql\\query;;" +
		"servername;SQL01;instancename;TP;isclustered;Yes;version;16.0.1000.6;TCP;50123;;"
	for _, tt := range []struct {
		name string
		in   []byte
		ok   bool
		want string
	}{
		// The example of research notes 1.9: 0x57 = 87 bytes of data.
		{"notes example", svrResp(sqlExpressData), true, "SQL01/SQLEXPRESS v15.0.2000.5 clustered=false tcp=49733; malformed=0 truncated=false dropped=0"},
		{"two instances, keys in any case", svrResp(two), true,
			"SQL01/MSSQLSERVER v16.0.1000.6 clustered=false tcp=1433;SQL01/TP v16.0.1000.6 clustered=true tcp=50123; malformed=0 truncated=false dropped=0"},
		{"no tcp", svrResp("ServerName;S;InstanceName;I;IsClustered;No;Version;1;np;\\\\S\\pipe\\x;;"), true, "S/I v1 clustered=false tcp=0; malformed=0 truncated=false dropped=0"},
		// The DAC example of the notes: port 0xdf32 = 57138.
		{"dac", []byte{0x05, 0x06, 0x00, 0x01, 0x32, 0xdf}, true, "dac 57138; malformed=0 truncated=false dropped=0"},
		{"tcp 70000", svrResp("ServerName;S;InstanceName;I;tcp;70000;;"), true, "S/I v clustered=false tcp=0 badport; malformed=1 truncated=false dropped=0"},
		{"tcp abc", svrResp("ServerName;S;InstanceName;I;tcp;abc;;"), true, "S/I v clustered=false tcp=0 badport; malformed=1 truncated=false dropped=0"},
		{"tcp 0", svrResp("ServerName;S;InstanceName;I;tcp;0;;"), true, "S/I v clustered=false tcp=0 badport; malformed=1 truncated=false dropped=0"},
		{"no final ;;", svrResp("ServerName;S;InstanceName;I;tcp;1433"), true, "S/I v clustered=false tcp=1433; malformed=0 truncated=false dropped=0"},
		{"ends in a key", svrResp("ServerName;S;InstanceName;I;;ServerName"), true, "S/I v clustered=false tcp=0; malformed=1 truncated=false dropped=0"},
		// A snap length cut the second instance: only the first, whole
		// one counts.
		{"cut", svrResp(two)[:3+len(two)-20], true,
			"SQL01/MSSQLSERVER v16.0.1000.6 clustered=false tcp=1433; malformed=0 truncated=true dropped=0"},
		{"long name", svrResp("ServerName;S;InstanceName;" + strings.Repeat("N", 40) + ";tcp;1433;;"), true,
			"S/" + strings.Repeat("N", 32) + " v clustered=false tcp=1433 cut; malformed=0 truncated=false dropped=0"},
		{"not a response", []byte{0x04, 0x06, 0x00}, false, " malformed=0 truncated=false dropped=0"},
		{"empty", svrResp(""), false, " malformed=0 truncated=false dropped=0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r SSRPResponse
			ok := ParseSSRPResponse(tt.in, &r)
			if got := ssrpSummary(&r); ok != tt.ok || got != tt.want {
				t.Errorf("got %v %q\nwant %v %q", ok, got, tt.ok, tt.want)
			}
		})
	}
	if n := len(svrResp(sqlExpressData)); n != 90 || len(sqlExpressData) != 0x57 {
		t.Errorf("the notes' example is %d bytes, data %d; the notes say 90 and 0x57", n, len(sqlExpressData))
	}
}

// TestSSRPManyInstances: the instances beyond the cap are counted, not
// kept; the parse stays linear.
func TestSSRPManyInstances(t *testing.T) {
	var b strings.Builder
	for i := range maxInstances + 10 {
		fmt.Fprintf(&b, "ServerName;S;InstanceName;I%d;tcp;%d;;", i, 1000+i)
	}
	var r SSRPResponse
	if !ParseSSRPResponse(svrResp(b.String()), &r) || r.NumInstances != maxInstances || r.Dropped != 10 {
		t.Fatalf("instances %d dropped %d, want %d and 10", r.NumInstances, r.Dropped, maxInstances)
	}
	if last := &r.Instances[maxInstances-1]; last.TCPPort != 1000+maxInstances-1 {
		t.Errorf("last port %d", last.TCPPort)
	}
}
