package dissect

import (
	"encoding/binary"
	"testing"
	"unicode/utf16"
)

// TestDCOMActivation: WMI's RemoteCreateInstance on LM_WMI_ProcessCallCreate
// (frames 18-25 of the connection to 135: a bind that spans two segments,
// its ack, an alter_context, the request and the 1136-byte answer). The
// answer names the object exporter twice, by name and by address; the next
// connection of the capture goes to 172.16.66.36:49670.
func TestDCOMActivation(t *testing.T) {
	got := feed(&wmi18, &wmi19, &wmi21, &wmi22, &wmi23, &wmi24, &wmi25)
	checkLearned(t, got, ""+
		"dcom other tcp/49670 host=01566s-win16-ir\n"+
		"dcom other tcp/49670 172.16.66.36 host=172.16.66.36\n")
	if got.activations != 1 || got.maps != 0 {
		t.Errorf("activations %d, maps %d; want 1 and 0", got.activations, got.maps)
	}
	// Without the bind and the request (a capture begun later), the
	// answer is still read: on port 135 an unknown call is tried both ways.
	got = feed(&wmi25)
	checkLearned(t, got, ""+
		"dcom other tcp/49670 host=01566s-win16-ir\n"+
		"dcom other tcp/49670 172.16.66.36 host=172.16.66.36\n")
}

// utf16Binding encodes a STRINGBINDING: tower id, then the UTF-16LE
// string and its NUL.
func utf16Binding(tower uint16, s string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, tower)
	for _, r := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, r)
	}
	return append(b, 0, 0)
}

func TestScanStringBindings(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in       []byte
		n        int
		port     uint16
		host, ip string
		wantCut  bool
	}{
		{"ipv4", utf16Binding(7, "10.1.2.3[135]"), 1, 135, "10.1.2.3", "10.1.2.3", false},
		{"name", utf16Binding(7, "DC01.corp.example[49670]"), 1, 49670, "DC01.corp.example", "", false},
		{"ipv6 literal", utf16Binding(7, "fe80::1%12[5000]"), 1, 5000, "fe80::1%12", "", false},
		{"named pipe", utf16Binding(0x0f, `\\HOST[\PIPE\atsvc]`), 0, 0, "", "", false},
		{"no port", utf16Binding(7, "172.16.66.36"), 0, 0, "", "", false},
		{"port 0", utf16Binding(7, "h[0]"), 0, 0, "", "", false},
		{"port 65536", utf16Binding(7, "h[65536]"), 0, 0, "", "", false},
		{"six digits", utf16Binding(7, "h[000135]"), 0, 0, "", "", false},
		{"no NUL", utf16Binding(7, "h[135]")[:2+2*6], 0, 0, "", "", false},
		{"0.0.0.0", utf16Binding(7, "0.0.0.0[135]"), 1, 135, "0.0.0.0", "", false},
		{"long name", utf16Binding(7, longHost(100)+"[1234]"), 1, 1234, longHost(maxHost), "", true},
		{"too long", utf16Binding(7, longHost(maxBindingHost+1)+"[1234]"), 0, 0, "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r RPCResult
			in := append([]byte{0xde, 0xad}, tt.in...)
			if n := scanStringBindings(in, &r); n != tt.n || r.NumEndpoints != tt.n {
				t.Fatalf("found %d (%d endpoints), want %d", n, r.NumEndpoints, tt.n)
			}
			if tt.n == 0 {
				return
			}
			e := &r.Endpoints[0]
			ip := ""
			if e.Addr.IsValid() {
				ip = e.Addr.String()
			}
			if e.Port != tt.port || string(e.Host()) != tt.host || ip != tt.ip || e.HostCut != tt.wantCut || e.Source != SourceDCOM {
				t.Errorf("got port %d host %q ip %q cut %v source %v; want %d %q %q %v dcom",
					e.Port, e.Host(), ip, e.HostCut, e.Source, tt.port, tt.host, tt.ip, tt.wantCut)
			}
		})
	}
}

func longHost(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}
