//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The restricted domain controller of TestRPCEndpointMapper: a real Samba
// Active Directory domain controller, provisioned for the test in a
// temporary directory, whose RPC services listen on a restricted dynamic
// range (the registry setting many sites use on their DCs) far below
// 49152-65535, the range the matrix lists for tm-dc-rpc-dynamic.
const (
	dcRealm  = "TPW.LAB"
	dcDomain = "TPW"
	// dcPassword is the administrator's of a throwaway domain that lives
	// in the test's temporary directory and answers only inside the lab.
	dcPassword = "Tpw-lab-pass1"
	dcRPCLow   = 5000
	dcRPCHigh  = 5010
	// The Threat Manager's bulk name translation is DRSUAPI
	// DsCrackNames, on the port the DC's endpoint mapper reports.
	dcCrackName = "Administrator@tpw.lab"
	dcCrackedDN = "CN=Administrator,CN=Users,DC=tpw,DC=lab"
)

// Files of Debian packages samba-tool needs to provision a domain and
// that no command names.
const (
	adSchemaDir   = "/usr/share/samba/setup/ad-schema"   // samba-ad-provision
	dsdbModules   = "/usr/lib/*/samba/ldb/samba_dsdb.so" // samba-dsdb-modules
	vfsACLXattrSO = "/usr/lib/*/samba/vfs/acl_xattr.so"  // samba-vfs-modules (the sysvol's ACLs)
)

// rpcFlowsQuery asks the daemon for the flows of the dynamic rule it keeps
// (blocked and unexpected ones only).
const rpcFlowsQuery = "/api/v1/flows?rule=tm-dc-rpc-dynamic"

// TestRPCEndpointMapper is the lab of real servers: a Threat
// Manager translates a name on a domain controller whose RPC range is
// restricted to 5000-5010. Its client (Samba's rpcclient) asks the DC's
// endpoint mapper on TCP 135 for DRSUAPI with ept_map and connects to the
// port the answer names. tpwatch, as a sensor on the router's mirror port
// and in replay of a recording of it, must match that flow to
// tm-dc-rpc-dynamic by the endpoint mapper's answer (rpc.via epm, the
// interface drsuapi) although the port is outside the rule's range; read
// headers only, as before it learned ports, the same flow is
// unexpected/no_rule. Then the router drops the restricted range while 135
// stays open, the commonest Active Directory firewall failure: the
// endpoint mapper answers, the port it names does not, and tpwatch reports
// that flow blocked/no_response on tm-dc-rpc-dynamic, named with the
// interface. Opened again, the port works again.
func TestRPCEndpointMapper(t *testing.T) {
	need(t, runtime.GOOS == "linux", "Linux network namespaces")
	need(t, os.Geteuid() == 0, "root")
	need(t, have("ip"), "ip (Debian package iproute2)")
	need(t, have("nft"), "nft (Debian package nftables)")
	need(t, have("tcpdump"), "tcpdump (Debian package tcpdump)")
	need(t, have("samba"), "samba (Debian package samba)")
	need(t, have("samba-tool"), "samba-tool (Debian package samba-common-bin)")
	need(t, have("rpcclient"), "rpcclient (Debian package smbclient)")
	need(t, globExists(adSchemaDir), "the Active Directory schema (Debian package samba-ad-provision)")
	need(t, globExists(dsdbModules), "Samba's directory database modules (Debian package samba-dsdb-modules)")
	need(t, globExists(vfsACLXattrSO), "Samba's VFS modules (Debian package samba-vfs-modules)")

	began := time.Now()
	dir := t.TempDir()
	dc := &sambaDC{dir: filepath.Join(dir, "dc")}
	// Provisioning is offline and takes seconds: it runs while tpwatch
	// builds. Whatever happens to the test, it has ended before the
	// temporary directory is removed.
	ctx, cancel := context.WithCancel(context.Background())
	provisioned := make(chan struct{})
	var provisionErr error
	go func() {
		defer close(provisioned)
		provisionErr = dc.provision(ctx)
	}()
	t.Cleanup(func() { cancel(); <-provisioned })
	bin := buildTpwatch(t)
	l := newLab(t)
	// go test's -timeout ends the test binary with a panic that runs no
	// cleanup. Samba, samba-tool and tcpdump die with the binary
	// (Pdeathsig); they, the daemon, the lab and the domain's files go
	// just before.
	guard := newDeadlineGuard(t)
	guard.add(func() { os.RemoveAll(dir) })
	guard.add(l.destroy)
	<-provisioned
	if provisionErr != nil {
		t.Fatalf("samba-tool domain provision: %v\n%s", provisionErr, dc.provisionLog)
	}
	t.Logf("%v: tpwatch built, lab made, domain %s provisioned", elapsed(began), dcRealm)

	// The agent's namespace plays the DC (Threat Prevention's agents run
	// on domain controllers), the Threat Manager's the client.
	dcHost, tm := l.hosts["agent"], l.hosts["tm"]
	dc.ns, dc.addr = dcHost.ns, dcHost.addr
	l.loadFirewall() // nothing dropped yet; the mirror to the SPAN port
	// Samba's client waits 60 s for a port that does not answer; the
	// kernel gives up after one SYN retransmission instead (the namespace's
	// own setting).
	l.nsExec(tm.ns, "sysctl", "-q", "-w", "net.ipv4.tcp_syn_retries=1")
	guard.add(dc.start(t))
	t.Logf("%v: samba answers DsCrackNames through its endpoint mapper", elapsed(began))

	site := filepath.Join(dir, "site.yaml")
	writeFile(t, site, fmt.Sprintf("roles:\n  threat-manager: [%s]\n  domain-controller: [%s]\ntimeouts: {tcp_attempt: 3s}\n", tm.addr, dc.addr))
	recording := filepath.Join(dir, "span.pcap")
	tcpdump := exec.Command("tcpdump", "-i", l.span, "-U", "-n", "-s", "0", "--time-stamp-precision=nano", "-w", recording)
	var tcpdumpOut lockedBuffer
	tcpdump.Stdout, tcpdump.Stderr = &tcpdumpOut, &tcpdumpOut
	tcpdump.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tcpdump.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcpdump.Process.Kill(); tcpdump.Wait() })
	d := startDaemonArgs(t, bin, site, "--interface", l.span)
	guard.add(func() { d.cmd.Process.Kill(); tcpdump.Process.Kill() })
	d.waitFor(t, 10*time.Second, "tpwatch_capture_up 1", func(s []sample) bool {
		v, _ := value(s, "tpwatch_capture_up", map[string]string{"interface": l.span})
		return v == 1
	})
	waitListening(t, &tcpdumpOut) // tcpdump too has opened its capture
	client := dc.clientConf(t, filepath.Join(dir, "tm-client"))
	dynamic := func(verdict, reason string) map[string]string {
		return map[string]string{"verdict": verdict, "reason": reason, "rule": "tm-dc-rpc-dynamic"}
	}

	// 1. Nothing in the way: ept_map on 135, then the announced port.
	if out, err := dc.crackNames(tm.ns, client); err != nil || !strings.Contains(out, dcCrackedDN) {
		t.Fatalf("lab: the Threat Manager's DsCrackNames failed (the lab is broken, not tpwatch): %v\n%s", err, out)
	}
	d.waitFor(t, 15*time.Second, "the flow to the announced port allowed by tm-dc-rpc-dynamic", func(s []sample) bool {
		v, _ := value(s, "tpwatch_flows_total", dynamic("allowed", ""))
		epm, _ := value(s, "tpwatch_announcement_answers_total", map[string]string{"source": "epm"})
		return v == 1 && epm == 1
	})
	t.Logf("%v: phase 1 (open) decided", elapsed(began))

	// 2. The router drops the Threat Manager's traffic to the restricted
	// range; 135 stays open.
	l.nft(l.router, fmt.Sprintf("add rule inet tpwfw forward_filter ip saddr %s ip daddr %s tcp dport %d-%d drop\n", tm.addr, dc.addr, dcRPCLow, dcRPCHigh))
	started := time.Now()
	if out, err := dc.crackNames(tm.ns, client); err == nil || strings.Contains(out, dcCrackedDN) {
		t.Fatalf("lab: DsCrackNames worked with the RPC range dropped (the lab is broken, not tpwatch): %v\n%s", err, out)
	} else {
		t.Logf("with the range dropped, rpcclient gave up after %v: %s", elapsed(started), strings.TrimSpace(out))
	}
	d.waitFor(t, 15*time.Second, "the unanswered flow to the announced port blocked/no_response on tm-dc-rpc-dynamic", func(s []sample) bool {
		v, _ := value(s, "tpwatch_flows_total", dynamic("blocked", "no_response"))
		return v == 1
	})
	var kept struct{ Flows []map[string]any }
	getJSON(t, "http://"+d.addr+rpcFlowsQuery+"&verdict=blocked", &kept)
	if len(kept.Flows) != 1 {
		t.Fatalf("the daemon keeps %d blocked flows of tm-dc-rpc-dynamic, want 1: %v", len(kept.Flows), kept.Flows)
	}
	daemonBlocked := kept.Flows[0]
	checkAnnounced(t, "the daemon's blocked flow", daemonBlocked, tm.addr, dc.addr, "blocked", "no_response")
	t.Logf("%v: phase 2 (range dropped) decided", elapsed(began))

	// 3. Opened again: it works again, and replay of the recording gets
	// packets past the blocked attempt's deadline.
	l.nft(l.router, "flush chain inet tpwfw forward_filter\n")
	if out, err := dc.crackNames(tm.ns, client); err != nil || !strings.Contains(out, dcCrackedDN) {
		t.Fatalf("lab: DsCrackNames failed after the range was opened again: %v\n%s", err, out)
	}
	d.waitFor(t, 15*time.Second, "a second flow allowed by tm-dc-rpc-dynamic", func(s []sample) bool {
		v, _ := value(s, "tpwatch_flows_total", dynamic("allowed", ""))
		return v == 2
	})
	// Every flow of the lab counted, exactly: three ept_map connections,
	// each answered, then three to the announced port, one dropped. The
	// port is outside the rule's range: only the answers make the two
	// others allowed on it (the daemon keeps no allowed flow to show).
	s := d.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tpwatch_flows_total", map[string]string{"rule": "tm-dc-rpc-epm", "verdict": "allowed"}, 3},
		{"tpwatch_flows_total", dynamic("allowed", ""), 2},
		{"tpwatch_flows_total", dynamic("blocked", "no_response"), 1},
		{"tpwatch_flows_total", map[string]string{"verdict": "allowed"}, 5},
		{"tpwatch_flows_total", map[string]string{"verdict": "blocked"}, 1},
		{"tpwatch_flows_total", map[string]string{"verdict": "unexpected"}, 0},
		{"tpwatch_announcement_answers_total", map[string]string{"source": "epm"}, 3},
		{"tpwatch_announcement_answers_unreadable_total", nil, 0},
		{"tpwatch_endpoint_mapper_errors_total", nil, 0},
		{"tpwatch_announced_ports", nil, 1}, // the one port DRSUAPI listens on
	} {
		if v, _ := value(s, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	t.Logf("%v: phase 3 (open again) decided", elapsed(began))

	time.Sleep(time.Second) // the last packets reach the recording
	tcpdump.Process.Signal(syscall.SIGTERM)
	tcpdump.Wait()

	listening := dc.listening(t)
	t.Run("replay", func(t *testing.T) {
		flows := replayFlows(t, bin, "--config", site, recording)
		dyn := toDynamic(flows, dc.addr)
		want := []string{"allowed/", "blocked/no_response", "allowed/"}
		if got := outcomes(dyn); !slices.Equal(got, want) {
			t.Fatalf("flows to the restricted range: %v, want %v\n%s", got, want, dumpFlows(flows))
		}
		for i, f := range dyn {
			checkAnnounced(t, fmt.Sprintf("replay's flow %d to the range", i+1), f, tm.addr, dc.addr, strings.Split(want[i], "/")[0], strings.Split(want[i], "/")[1])
			if port := int(jsonNum(f["dst_port"])); !listening[port] {
				t.Errorf("flow %d went to port %d, where samba does not listen (it listens on %v)", i+1, port, listening)
			}
		}
		if dyn[1]["src_port"] != daemonBlocked["src_port"] || dyn[1]["dst_port"] != daemonBlocked["dst_port"] {
			t.Errorf("replay's blocked flow %v:%v is not the daemon's %v:%v", dyn[1]["src_port"], dyn[1]["dst_port"], daemonBlocked["src_port"], daemonBlocked["dst_port"])
		}
		epm := 0
		for _, f := range flows {
			switch {
			case f["verdict"] == "unexpected":
				t.Errorf("unexpected flow in replay: %v", f)
			case jsonNum(f["dst_port"]) == 135:
				epm++
				if f["rule"] != "tm-dc-rpc-epm" || f["verdict"] != "allowed" || f["app"] != "dcerpc" {
					t.Errorf("endpoint mapper connection: %v, want allowed by tm-dc-rpc-epm, app dcerpc", f)
				}
			}
		}
		if epm != 3 {
			t.Errorf("%d endpoint mapper connections in replay, want 3\n%s", epm, dumpFlows(flows))
		}
	})

	// What the classifier concluded before it read the endpoint mapper's
	// answers: a port outside the rule's range, so no rule.
	t.Run("headers_only", func(t *testing.T) {
		flows := replayFlows(t, bin, "--headers-only", "--config", site, recording)
		dyn := toDynamic(flows, dc.addr)
		if len(dyn) != 3 {
			t.Fatalf("%d flows to the restricted range, want 3\n%s", len(dyn), dumpFlows(flows))
		}
		for i, f := range dyn {
			if f["verdict"] != "unexpected" || f["reason"] != "no_rule" || f["rule"] != "" || f["rpc"] != nil {
				t.Errorf("headers only, flow %d to port %v: %v/%v rule %q rpc %v, want unexpected/no_rule and nothing learned", i+1, f["dst_port"], f["verdict"], f["reason"], f["rule"], f["rpc"])
			}
		}
	})

	// Every dynamic flow is explained by an answer: strict changes nothing.
	t.Run("rpc_strict", func(t *testing.T) {
		flows := replayFlows(t, bin, "--rpc-strict", "--config", site, recording)
		want := []string{"allowed/", "blocked/no_response", "allowed/"}
		if got := outcomes(toDynamic(flows, dc.addr)); !slices.Equal(got, want) {
			t.Errorf("--rpc-strict: flows to the restricted range %v, want %v\n%s", got, want, dumpFlows(flows))
		}
	})

	// The report's TO OPEN names the dropped port, its rule, what
	// announced it and that it did not answer; the exit status says
	// something was blocked. The table wraps long
	// lines, so words are compared with the wrapping undone.
	t.Run("text_report", func(t *testing.T) {
		out, status := runReplay(t, bin, "--format", "table", "--config", site, recording)
		if status != 1 {
			t.Errorf("tpwatch replay exited %d, want 1 (something blocked)", status)
		}
		_, toOpen, found := strings.Cut(out, "TO OPEN")
		toOpen = strings.Join(strings.Fields(toOpen), " ")
		port := fmt.Sprint(daemonBlocked["dst_port"])
		for _, want := range []string{
			"(1 flow) tcp/" + port + " to " + dc.addr + " (domain-controller) from " + tm.addr + " (threat-manager)",
			"tm-dc-rpc-dynamic · port announced by the endpoint mapper of " + dc.addr + " (drsuapi) · 1 flow, no answer · state S0",
		} {
			if !found || !strings.Contains(toOpen, want) {
				t.Errorf("the report's TO OPEN lacks %q:\n%s", want, out)
			}
		}
	})
	t.Logf("%v in all", elapsed(began))
}

// sambaDC is a Samba Active Directory domain controller running only its
// RPC server, in a lab namespace.
type sambaDC struct {
	dir          string // the provision's target directory: all its state
	ns, addr     string
	provisionLog []byte
	log          lockedBuffer // samba's own
}

// provision makes a new domain whose every file is under dc.dir (no DNS
// server: the lab needs none).
func (dc *sambaDC) provision(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "samba-tool", "domain", "provision",
		"--targetdir="+dc.dir, "--realm="+dcRealm, "--domain="+dcDomain, "--adminpass="+dcPassword,
		"--server-role=dc", "--dns-backend=NONE", "--host-name=dc1",
		// The smaller schema provisions in about half the time.
		"--base-schema=2008_R2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	dc.provisionLog, err = cmd.CombinedOutput()
	return err
}

// start runs samba in the DC's namespace and returns once a DsCrackNames
// through its endpoint mapper works from the DC itself (over its loopback,
// which the mirror does not copy), with a function that kills it. Samba stops with the test, with the test
// binary if it dies, or by itself after five minutes.
func (dc *sambaDC) start(t *testing.T) (kill func()) {
	t.Helper()
	for _, sub := range []string{"pid", "ncalrpc"} {
		if err := os.MkdirAll(filepath.Join(dc.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"netns", "exec", dc.ns, "samba", "--foreground", "--no-process-group", "--debug-stdout",
		"--debuglevel=1", "--model=single", "--maximum-runtime=300", "--configfile=" + filepath.Join(dc.dir, "etc", "smb.conf")}
	// Over the provisioned smb.conf: the RPC server alone, on the lab
	// address only, its dynamic endpoints in the restricted range, and
	// nothing written outside the target directory.
	for _, o := range [][2]string{
		{"server services", "rpc"},
		{"interfaces", dc.addr},
		{"bind interfaces only", "yes"},
		{"rpc server dynamic port range", fmt.Sprintf("%d-%d", dcRPCLow, dcRPCHigh)},
		{"disable netbios", "yes"},
		{"pid directory", filepath.Join(dc.dir, "pid")},
		{"ncalrpc dir", filepath.Join(dc.dir, "ncalrpc")},
		{"log file", filepath.Join(dc.dir, "log.%m")},
	} {
		args = append(args, "--option="+o[0]+"="+o[1])
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &dc.log, &dc.log
	// ip execs samba, which leads a process group of its own: whatever it
	// forks is signalled with it. It dies with the test binary too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		// SIGTERM, then after 5 s SIGKILL; whatever is left in samba's
		// group is killed either way.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("samba's log:\n%s", lastBytes(dc.log.String(), 16<<10))
		}
	})
	probe := dc.clientConf(t, filepath.Join(dc.dir, "probe"))
	deadline := time.Now().Add(45 * time.Second)
	for {
		out, err := dc.crackNames(dc.ns, probe)
		if err == nil && strings.Contains(out, dcCrackedDN) {
			return func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		}
		select {
		case err := <-done:
			t.Fatalf("samba exited: %v\n%s", err, lastBytes(dc.log.String(), 16<<10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("samba did not answer DsCrackNames within 45s: %v\n%s\nsamba's log:\n%s", err, out, lastBytes(dc.log.String(), 16<<10))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// clientConf writes an smb.conf for rpcclient whose state stays in dir,
// and returns its path.
func (dc *sambaDC) clientConf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\n\tworkgroup = %s\n\trealm = %s\n\tclient use kerberos = disabled\n", dcDomain, dcRealm)
	for _, d := range []string{"private dir", "lock directory", "state directory", "cache directory", "pid directory", "ncalrpc dir"} {
		path := filepath.Join(dir, strings.ReplaceAll(d, " ", "-"))
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\t%s = %s\n", d, path)
	}
	fmt.Fprintf(&b, "\tlog file = %s\n", filepath.Join(dir, "log.%m"))
	conf := filepath.Join(dir, "smb.conf")
	writeFile(t, conf, b.String())
	return conf
}

// crackNames runs Samba's rpcclient in namespace ns: DRSUAPI DsCrackNames
// over ncacn_ip_tcp with no port, so that the client first asks the DC's
// endpoint mapper on 135 (ept_map) where DRSUAPI listens. DRSUAPI wants a
// sealed connection; the endpoint mapper's is not.
func (dc *sambaDC) crackNames(ns, conf string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "rpcclient", "--configfile="+conf,
		"--user="+dcDomain+"/Administrator%"+dcPassword, "ncacn_ip_tcp:"+dc.addr+"[seal]",
		"--command=dscracknames "+dcCrackName)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// listening returns the TCP ports samba listens on in the DC's namespace.
func (dc *sambaDC) listening(t *testing.T) map[int]bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", dc.ns, "ss", "-Hltn").CombinedOutput()
	if err != nil {
		t.Fatalf("ss in %s: %v\n%s", dc.ns, err, out)
	}
	ports := map[int]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			if i := strings.LastIndexByte(f[3], ':'); i >= 0 {
				if p, err := strconv.Atoi(f[3][i+1:]); err == nil {
					ports[p] = true
				}
			}
		}
	}
	return ports
}

// checkAnnounced checks a flow to the restricted range (from replay or the
// daemon's flow API): the Threat Manager to the DC, on tm-dc-rpc-dynamic
// with the verdict wanted, outside the rule's listed range, and explained
// by the endpoint mapper's answer for DRSUAPI shortly before it.
func checkAnnounced(t *testing.T, what string, f map[string]any, tm, dc, verdict, reason string) {
	t.Helper()
	port := int(jsonNum(f["dst_port"]))
	if f["src_ip"] != tm || f["dst_ip"] != dc || port < dcRPCLow || port > dcRPCHigh {
		t.Errorf("%s: %v:%v → %v:%v, want %s → %s:%d-%d", what, f["src_ip"], f["src_port"], f["dst_ip"], port, tm, dc, dcRPCLow, dcRPCHigh)
	}
	if f["rule"] != "tm-dc-rpc-dynamic" || f["verdict"] != verdict || f["reason"] != reason {
		t.Errorf("%s to %d: %v/%v on %q, want %s/%s on tm-dc-rpc-dynamic", what, port, f["verdict"], f["reason"], f["rule"], verdict, reason)
	}
	if verdict == "blocked" && f["conn_state"] != "S0" {
		t.Errorf("%s to %d: conn_state %v, want S0 (SYNs, no answer)", what, port, f["conn_state"])
	}
	rpc, _ := f["rpc"].(map[string]any)
	if rpc["via"] != "epm" || rpc["interface"] != "drsuapi" {
		t.Errorf("%s to %d: rpc %v, want via epm, interface drsuapi", what, port, f["rpc"])
		return
	}
	first, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(f["ts_first"]))
	announced, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(rpc["announced"]))
	if err1 != nil || err2 != nil || announced.After(first) || first.Sub(announced) > 5*time.Second {
		t.Errorf("%s to %d: announced %v, first packet %v: want the answer just before the flow", what, port, rpc["announced"], f["ts_first"])
	}
}

// deadlineGuard runs its functions, the last added first, ten seconds
// before go test's -timeout would end the test binary, unless the test has
// ended by then.
type deadlineGuard struct {
	mu sync.Mutex
	fs []func()
}

func newDeadlineGuard(t *testing.T) *deadlineGuard {
	g := new(deadlineGuard)
	deadline, ok := t.Deadline()
	if !ok || time.Until(deadline) <= 10*time.Second {
		return g
	}
	timer := time.AfterFunc(time.Until(deadline)-10*time.Second, func() {
		fmt.Fprintf(os.Stderr, "%s: go test's -timeout is near: stopping what the test started\n", t.Name())
		g.mu.Lock()
		defer g.mu.Unlock()
		for i := len(g.fs) - 1; i >= 0; i-- {
			g.fs[i]()
		}
	})
	t.Cleanup(func() { timer.Stop() })
	return g
}

func (g *deadlineGuard) add(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fs = append(g.fs, f)
}

// runReplay runs tpwatch replay and returns its output; exit status 1
// (something blocked or unexpected) is not an error.
func runReplay(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"replay"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return string(out), 1
	}
	t.Fatalf("tpwatch replay %v: %v\n%s", args, err, stderr.String())
	return "", 0
}

// replayFlows runs tpwatch replay --format json and returns its flows.
func replayFlows(t *testing.T, bin string, args ...string) []map[string]any {
	t.Helper()
	out, _ := runReplay(t, bin, append([]string{"--format", "json"}, args...)...)
	var flows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var f map[string]any
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("replay line %q: %v", line, err)
		}
		flows = append(flows, f)
	}
	return flows
}

// toDynamic returns the flows to the DC's restricted range, oldest first.
func toDynamic(flows []map[string]any, dc string) []map[string]any {
	var dyn []map[string]any
	for _, f := range flows {
		if p := jsonNum(f["dst_port"]); f["dst_ip"] == dc && p >= dcRPCLow && p <= dcRPCHigh {
			dyn = append(dyn, f)
		}
	}
	slices.SortFunc(dyn, func(a, b map[string]any) int {
		return strings.Compare(fmt.Sprint(a["ts_first"]), fmt.Sprint(b["ts_first"]))
	})
	return dyn
}

// outcomes lists "verdict/reason" of each flow.
func outcomes(flows []map[string]any) []string {
	var out []string
	for _, f := range flows {
		out = append(out, fmt.Sprintf("%v/%v", f["verdict"], f["reason"]))
	}
	return out
}

func dumpFlows(flows []map[string]any) string {
	var b strings.Builder
	for _, f := range flows {
		line, _ := json.Marshal(f)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// waitListening waits until tcpdump says it listens: its capture is open.
func waitListening(t *testing.T, out *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not open its capture within 10s: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// globExists says whether a file matches pattern (a path or a glob).
func globExists(pattern string) bool {
	m, _ := filepath.Glob(pattern)
	return len(m) > 0
}

func jsonNum(v any) float64 { f, _ := v.(float64); return f }

func elapsed(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// lastBytes returns the last n bytes of s.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
