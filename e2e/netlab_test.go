//go:build linux

package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// host is one machine of the lab: a namespace with one veth to the router.
type host struct {
	name string // role-like name: agent, em, sql, tm, console
	ns   string
	addr string // its IPv4 address
	gw   string // the router's address on its link
	link string // the router's interface to it (in the router namespace)
}

// lab is the test network. Every namespace name carries a random id, so
// runs never collide and a leftover is easy to recognise (tpw<id>-...).
type lab struct {
	t      *testing.T
	id     string
	router string
	hosts  map[string]*host
	// span is the root-namespace end of a veth whose other end, in the
	// router, receives a copy of every packet the router's links carry:
	// a SPAN port, which tpwatch captures from the root namespace.
	span string
	// mgmtLinks are the root-namespace ends of the management links.
	mgmtLinks []string
}

// hostNames in link order: host i is on 10.200.<i+1>.0/24.
var hostNames = []string{"agent", "em", "sql", "tm", "console"}

func newLab(t *testing.T) *lab {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b[:])
	l := &lab{t: t, id: id, router: "tpw" + id + "-router", hosts: map[string]*host{}, span: "tpws" + id}
	// Registered first, so that a failure half-way still removes what
	// was made. Deleting the router namespace destroys the span veth.
	t.Cleanup(l.destroy)

	l.ip("netns", "add", l.router)
	l.ipns(l.router, "link", "set", "lo", "up")
	l.nsExec(l.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	for i, name := range hostNames {
		h := &host{
			name: name,
			ns:   "tpw" + id + "-" + name,
			addr: fmt.Sprintf("10.200.%d.2", i+1),
			gw:   fmt.Sprintf("10.200.%d.1", i+1),
			link: "to-" + name,
		}
		l.hosts[name] = h
		l.ip("netns", "add", h.ns)
		l.ipns(h.ns, "link", "set", "lo", "up")
		// Made inside the router namespace, with the peer put straight into
		// the host's: no name is ever taken in the root namespace.
		l.ipns(l.router, "link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		l.ipns(l.router, "addr", "add", h.gw+"/24", "dev", h.link)
		l.ipns(l.router, "link", "set", h.link, "up")
		l.ipns(h.ns, "addr", "add", h.addr+"/24", "dev", "eth0")
		l.ipns(h.ns, "link", "set", "eth0", "up")
		l.ipns(h.ns, "route", "add", "default", "via", h.gw)
	}
	l.ip("link", "add", l.span, "type", "veth", "peer", "name", "span0", "netns", l.router)
	l.ipns(l.router, "link", "set", "span0", "up")
	l.ip("link", "set", l.span, "up")
	return l
}

// firewall loads the router's nftables rules: the forward chain that
// blocks some flows, and the mirror to span0 (see mirror).
func (l *lab) firewall() {
	ag, em, sql, tm := l.hosts["agent"].addr, l.hosts["em"].addr, l.hosts["sql"].addr, l.hosts["tm"].addr
	l.loadFirewall(
		fmt.Sprintf("ip saddr %s ip daddr %s tcp dport 10000 drop", ag, tm),
		fmt.Sprintf("ip saddr %s ip daddr %s tcp dport 10001 reject with tcp reset", ag, tm),
		fmt.Sprintf("ip saddr %s ip daddr %s udp dport 1434 reject with icmp type admin-prohibited", em, sql),
	)
}

// loadFirewall loads the router's forward chain with these nftables rules,
// and the mirror to span0.
func (l *lab) loadFirewall(forward ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet tpwfw {\n  chain forward_filter {\n    type filter hook forward priority 0; policy accept;\n")
	for _, r := range forward {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	b.WriteString("  }\n}\n")
	l.nft(l.router, b.String())
	l.mirror()
}

// mirror copies every routed link to span0 (ingress and egress, so the
// router's own RSTs and ICMP errors are copied too; a forwarded packet is
// therefore seen twice, once per link, as on a real SPAN session of
// several ports).
func (l *lab) mirror() {
	var b strings.Builder
	b.WriteString("table netdev tpwspan {\n")
	for _, name := range hostNames {
		link := l.hosts[name].link
		fmt.Fprintf(&b, "  chain in_%s { type filter hook ingress device %q priority 0; dup to \"span0\"; }\n", name, link)
		fmt.Fprintf(&b, "  chain out_%s { type filter hook egress device %q priority 0; dup to \"span0\"; }\n", name, link)
	}
	b.WriteString("}\n")
	l.nft(l.router, b.String())
}

// nft loads a ruleset in namespace ns.
func (l *lab) nft(ns, ruleset string) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft in %s: %v: %s\nruleset:\n%s", ns, err, out, ruleset)
	}
}

// mgmt gives a host a management link to the root namespace, neither
// routed nor mirrored, as on a management network: a daemon in the host's
// namespace serves its metrics there and its scrapes never cross the link
// it captures. The addresses are in 198.18.0.0/15, the range set aside for
// network tests (RFC 2544). It returns the host's address on the link.
func (l *lab) mgmt(name string, i int) string {
	l.t.Helper()
	h := l.hosts[name]
	root := fmt.Sprintf("tpwm%s%d", l.id, i)
	l.mgmtLinks = append(l.mgmtLinks, root)
	l.ip("link", "add", root, "type", "veth", "peer", "name", "mgmt0", "netns", h.ns)
	l.ip("addr", "add", fmt.Sprintf("198.18.%d.1/24", i), "dev", root)
	l.ip("link", "set", root, "up")
	l.ipns(h.ns, "addr", "add", fmt.Sprintf("198.18.%d.2/24", i), "dev", "mgmt0")
	l.ipns(h.ns, "link", "set", "mgmt0", "up")
	return fmt.Sprintf("198.18.%d.2", i)
}

func (l *lab) destroy() {
	for _, link := range l.mgmtLinks {
		exec.Command("ip", "link", "del", link).Run()
	}
	for _, name := range hostNames {
		if h := l.hosts[name]; h != nil {
			exec.Command("ip", "netns", "del", h.ns).Run()
		}
	}
	exec.Command("ip", "netns", "del", l.router).Run()
	// The veth goes with the router namespace; this only matters if the
	// namespace was never made.
	exec.Command("ip", "link", "del", l.span).Run()
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (l *lab) ipns(ns string, args ...string) {
	l.t.Helper()
	l.ip(append([]string{"-n", ns}, args...)...)
}

func (l *lab) nsExec(ns string, args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput(); err != nil {
		l.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

// helper returns a command that runs this test binary in namespace ns in a
// helper mode (see TestMain).
func (l *lab) helper(ns, mode string, args ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperArgsEnv+"="+strings.Join(args, " "))
	return cmd
}

// serve starts servers in a host's namespace (specs "tcp:3741",
// "udp:1434") and returns once they listen. They stop with the test.
func (l *lab) serve(name string, specs ...string) {
	l.t.Helper()
	h := l.hosts[name]
	var addrs []string
	for _, s := range specs {
		proto, port, _ := strings.Cut(s, ":")
		addrs = append(addrs, proto+":"+h.addr+":"+port)
	}
	cmd := l.helper(h.ns, "serve", addrs...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			l.t.Fatalf("servers %v in %s: %q", specs, name, line)
		}
	case <-time.After(10 * time.Second):
		l.t.Fatalf("servers %v in %s did not start", specs, name)
	}
}

// dial runs clients in a host's namespace ("tcp:em:3741") and returns each
// one's outcome: ok, refused, timeout, or an error text.
func (l *lab) dial(from string, specs ...string) map[string]string {
	l.t.Helper()
	var targets []string
	for _, s := range specs {
		parts := strings.Split(s, ":")
		targets = append(targets, parts[0]+":"+l.hosts[parts[1]].addr+":"+parts[2])
	}
	out, err := l.helper(l.hosts[from].ns, "dial", targets...).Output()
	if err != nil {
		l.t.Fatalf("clients %v in %s: %v", specs, from, err)
	}
	results := map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, s := range specs {
		if i < len(lines) {
			_, results[s], _ = strings.Cut(lines[i], "=")
		}
	}
	return results
}
