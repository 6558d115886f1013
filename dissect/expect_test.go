package dissect

import (
	"testing"

	"github.com/tpwatch/tpwatch/policy"
)

// TestExpectationsCoverTheMatrix: every rule of the embedded matrix has an
// expectation for each of its server ports, and the table names no rule
// or port the matrix does not have. A rule added to matrix.yaml fails here
// until someone says what it carries.
func TestExpectationsCoverTheMatrix(t *testing.T) {
	m, err := policy.DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]*policy.Rule{}
	for i := range m.Rules {
		r := &m.Rules[i]
		rules[r.ID] = r
		if _, ok := ruleExpectations[r.ID]; !ok {
			t.Errorf("rule %s (%s/%s) has no expectation", r.ID, r.Transport, r.PortsString())
			continue
		}
		for port := range 1 << 16 {
			_, ok := ExpectedApps(r.ID, uint16(port))
			if has := r.HasPort(uint16(port)); ok != has {
				t.Errorf("rule %s port %d: in the rule %v, in the table %v", r.ID, port, has, ok)
				break
			}
		}
	}
	for id := range ruleExpectations {
		if rules[id] == nil {
			t.Errorf("the table names rule %s, which the matrix does not have", id)
		}
	}
}

// TestExpectationsFitTheTransport: a UDP rule expects no protocol that
// runs only over TCP, and a TCP rule none that runs only over UDP.
func TestExpectationsFitTheTransport(t *testing.T) {
	udpOnly := appSetOf(AppSSRP, AppNBNS, AppNBDGM)
	tcpOnly := appSetOf(AppTLS, AppHTTP2, AppGRPC, AppHTTP, AppTDS, AppAMQP, AppSMB, AppNetBIOSSession, AppDCERPC, AppRDP)
	m, err := policy.DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Rules {
		wrong := tcpOnly
		if r.Transport == policy.TCP {
			wrong = udpOnly
		}
		for _, pe := range ruleExpectations[r.ID] {
			if pe.Apps&wrong != 0 {
				t.Errorf("rule %s (%s) expects a protocol of the other transport: %b", r.ID, r.Transport, pe.Apps&wrong)
			}
		}
	}
}

func TestMismatch(t *testing.T) {
	for _, tt := range []struct {
		rule     string
		port     uint16
		app      App
		mismatch bool
	}{
		{"agent-em-grpc", 3741, AppHTTP, true}, // research notes 2.4's example event
		{"agent-em-grpc", 3741, AppTLS, false},
		{"agent-em-grpc", 3741, AppHTTP2, false},
		{"agent-em-grpc", 3741, AppGRPC, false},
		{"agent-em-grpc", 3741, AppUnknown, false}, // unknown never mismatches
		{"agent-em-grpc", 3741, AppNone, false},
		{"tm-console-http", 8080, AppRDP, true}, // an RDP server on the Threat Manager's 8080
		{"em-sql-tds", 1433, AppTLS, false},     // TDS 8.0
		{"tm-dc-rpc-dynamic", 49667, AppDCERPC, false},
		{"tm-dc-rpc-dynamic", 49667, AppSMB, true},
		{"agent-netapp7-rpc", 139, AppNetBIOSSession, false},
		{"agent-netapp7-rpc", 135, AppNetBIOSSession, true},
		{"am-agent", 4498, AppHTTP, false}, // no expectation
		{"agent-tm-tcp", 10000, AppHTTP, false},
		{"agent-tm-tcp", 10001, AppHTTP, true},
	} {
		e, ok := ExpectedApps(tt.rule, tt.port)
		if !ok {
			t.Errorf("%s %d: no expectation", tt.rule, tt.port)
			continue
		}
		if got := e.Mismatch(tt.app); got != tt.mismatch {
			t.Errorf("%s %d carrying %s: mismatch %v, want %v", tt.rule, tt.port, tt.app, got, tt.mismatch)
		}
	}
	if _, ok := ExpectedApps("rdp-admin", 3389); ok {
		t.Error("a site's own rule has an expectation")
	}
	if e, _ := ExpectedApps("agent-em-grpc", 3741); e.ALPN != ALPNH2 {
		t.Error("3741 does not expect ALPN h2")
	}
}
