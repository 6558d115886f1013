package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// Real captures of a Windows domain, replayed as a Threat Prevention
// administrator would: the verdicts must hold on them, not only on the
// traffic tpwatch generates.

// verdictCounts replays a corpus capture and counts its flows by
// verdict/reason.
func verdictCounts(t *testing.T, args ...string) map[string]int {
	t.Helper()
	out, stderr, status := tpwatch(t, append([]string{"replay", "--format", "json", "--all"}, args...)...)
	if status == exitError {
		t.Fatalf("replay %v: status 2: %s", args, stderr)
	}
	counts := map[string]int{}
	for _, f := range parseNDJSON(t, out) {
		counts[f["verdict"].(string)+"/"+f["reason"].(string)]++
	}
	return counts
}

// TestCoLocatedServersAreNotUnexpected: agents run on domain controllers.
// Two DCs that both run an agent talk RPC and its dynamic ports all day
// (here, 881 flows of a Zerologon attempt between them): that is not the
// product's traffic and must not be unexpected. A Threat Manager talking
// to a DC on the same ports is what the matrix allows.
func TestCoLocatedServersAreNotUnexpected(t *testing.T) {
	capFile := filepath.Join(testenv.Corpus(t), "enterprise/pcap-attack/Lateral_Movement/CVE-2020-1472_Zerologon_RPC_NetLogon_NullChallenge_SecChan_6_from_nonDC_to_DC.pcapng")
	agentsOnDCs := writeFile(t, "dcs.yaml", "roles:\n  agent: [172.16.66.36, 172.16.66.37]\n  domain-controller: [172.16.66.36, 172.16.66.37]\n")
	got := verdictCounts(t, "--config", agentsOnDCs, capFile)
	if got["ignored/not_product"] != 881 || len(got) != 1 {
		t.Errorf("two DCs running agents: %v, want all 881 flows ignored/not_product", got)
	}
	tmToDC := writeFile(t, "tm.yaml", "roles:\n  threat-manager: [172.16.66.37]\n  domain-controller: [172.16.66.36]\n")
	if got := verdictCounts(t, "--config", tmToDC, capFile); got["allowed/"] != 881 {
		t.Errorf("Threat Manager to a DC: %v, want all 881 flows allowed", got)
	}
}

// TestAScanCreatesNoRole: an nmap SYN scan's SYNs, answered by RSTs or
// not at all, and its SYN-ACKs it resets, show nothing of anyone's role.
func TestAScanCreatesNoRole(t *testing.T) {
	capFile := filepath.Join(testenv.Corpus(t), "protocols/ndpi/synscan.pcap")
	out, stderr, status := tpwatch(t, "replay", "--print-inventory", capFile)
	if status != exitOK {
		t.Fatalf("status %d: %s", status, stderr)
	}
	if !strings.Contains(out, "roles: {}") {
		t.Errorf("a scan taught roles:\n%s", out)
	}
	if got := verdictCounts(t, capFile); got["unexpected/no_rule"]+got["unexpected/feature_disabled"]+got["unexpected/unauthorized_client"] != 0 {
		t.Errorf("a scan with no inventory gives unexpected flows: %v", got)
	}
}

// TestMidStreamSMBKeepsItsServerPort: the agent's SMB session to the
// Enterprise Manager's 445, seen mid-stream, stays on 445 though the
// agent's ephemeral port is in the DCOM range wmi-auto-deploy turns on.
func TestMidStreamSMBKeepsItsServerPort(t *testing.T) {
	capFile := filepath.Join(testenv.Corpus(t), "enterprise/pcap-attack/Lateral_Movement/LM_WMI_ProcessCallCreate.pcapng")
	cfg := writeFile(t, "lm.yaml", "roles:\n  agent: [172.16.66.36]\n  enterprise-manager: [172.16.66.1]\nfeatures:\n  wmi-auto-deploy: true\n")
	out, stderr, status := tpwatch(t, "replay", "--format", "json", "--config", cfg, capFile)
	if status == exitError {
		t.Fatalf("status 2: %s", stderr)
	}
	found := false
	for _, f := range parseNDJSON(t, out) {
		if f["src_ip"] == "172.16.66.36" && f["src_port"] == 64952.0 {
			found = true
			if f["dst_ip"] != "172.16.66.1" || f["dst_port"] != 445.0 || f["rule"] == "em-agent-wmi-dcom" {
				t.Errorf("the mid-stream SMB flow is %v, want the agent the client of the EM's 445", f)
			}
		}
		if f["dst_port"] == 64952.0 {
			t.Errorf("the mid-stream SMB flow is turned around: %v", f)
		}
	}
	if !found {
		t.Error("the mid-stream SMB flow of the agent's port 64952 is not reported")
	}
}

// TestEndpointMapperExplainsDynamicPorts: in a real MAPI session the
// domain controller's endpoint mapper sends the client to 4997 (nspi) and
// 1032 (emsmdb), outside the 49152-65535 the matrix lists for
// tm-dc-rpc-dynamic. With the answers read, those flows are that rule's,
// named with their interface; reading headers only, they are no_rule, as
// every version before this one said. In LM_WMI, a DCOM activation on 135
// sends the Enterprise Manager to the agent's 49670.
func TestEndpointMapperExplainsDynamicPorts(t *testing.T) {
	capFile := filepath.Join(testenv.Corpus(t), "protocols/zeek/dce-rpc/mapi.pcap")
	cfg := writeFile(t, "mapi.yaml", "roles:\n  threat-manager: [192.168.0.173]\n  domain-controller: [192.168.0.2]\n")
	dynamic := func(args ...string) (got []string) {
		out, stderr, status := tpwatch(t, append([]string{"replay", "--format", "json", "--config", cfg}, args...)...)
		if status == exitError {
			t.Fatalf("status 2: %s", stderr)
		}
		for _, f := range parseNDJSON(t, out) {
			if f["src_ip"] != "192.168.0.173" || f["dst_ip"] != "192.168.0.2" || f["dst_port"] != 4997.0 && f["dst_port"] != 1032.0 {
				continue
			}
			line := fmt.Sprintf("%v %v/%v %v", f["dst_port"], f["verdict"], f["reason"], f["rule"])
			if rpc, ok := f["rpc"].(map[string]any); ok {
				line += fmt.Sprintf(" via %v %v", rpc["via"], rpc["interface"])
			}
			got = append(got, line)
		}
		sort.Strings(got)
		return got
	}
	want := []string{
		"1032 allowed/ tm-dc-rpc-dynamic via epm emsmdb",
		"4997 allowed/ tm-dc-rpc-dynamic via epm nspi",
		"4997 allowed/ tm-dc-rpc-dynamic via epm nspi",
	}
	if got := dynamic(capFile); !slices.Equal(got, want) {
		t.Errorf("with the endpoint mapper read:\n got %q\nwant %q", got, want)
	}
	if got := dynamic("--rpc-strict", capFile); !slices.Equal(got, want) {
		t.Errorf("--rpc-strict: announced ports are explained:\n got %q\nwant %q", got, want)
	}
	headersOnly := []string{"1032 unexpected/no_rule ", "4997 unexpected/no_rule ", "4997 unexpected/no_rule "}
	if got := dynamic("--headers-only", capFile); !slices.Equal(got, headersOnly) {
		t.Errorf("--headers-only:\n got %q\nwant %q", got, headersOnly)
	}

	lm := filepath.Join(testenv.Corpus(t), "enterprise/pcap-attack/Lateral_Movement/LM_WMI_ProcessCallCreate.pcapng")
	lmCfg := writeFile(t, "lm.yaml", "roles:\n  agent: [172.16.66.36]\n  enterprise-manager: [172.16.66.1]\nfeatures:\n  wmi-auto-deploy: true\n")
	out, stderr, status := tpwatch(t, "replay", "--format", "json", "--config", lmCfg, lm)
	if status == exitError {
		t.Fatalf("status 2: %s", stderr)
	}
	var dcom int
	for _, f := range parseNDJSON(t, out) {
		if rpc, ok := f["rpc"].(map[string]any); ok && rpc["via"] == "dcom" {
			dcom++
			if f["dst_port"] != 49670.0 || f["rule"] != "em-agent-wmi-dcom" || f["verdict"] != "allowed" {
				t.Errorf("the flow a DCOM activation announced is %v, want the EM's to the agent's 49670, allowed by em-agent-wmi-dcom", f)
			}
		}
	}
	if dcom != 1 {
		t.Errorf("%d flows explained by a DCOM activation, want 1", dcom)
	}
}
