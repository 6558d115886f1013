package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tpwatch/tpwatch/internal/texttable"
	"github.com/tpwatch/tpwatch/report"
)

type observeFlags struct {
	server       string
	follow       bool
	verdicts     []string
	hosts        []string
	rules        []string
	ports        []string
	last         int
	output       string
	interval     time.Duration
	timeout      time.Duration
	username     string
	passwordFile string
	tlsCA        string
	insecure     bool
}

func (a *app) observeCommand() *cobra.Command {
	var f observeFlags
	cmd := &cobra.Command{
		Use:   "observe [flags]",
		Short: "Print the blocked and unexpected flows a running tpwatch has seen",
		Long: `Read the last blocked and unexpected flows from the flow API of a running
tpwatch (tpwatch run serves it at /api/v1/flows beside /metrics) and print
one line a flow, as hubble observe does; --follow keeps printing new ones
until interrupted.

--verdict, --host, --rule and --port are applied by the daemon. The daemon
keeps its last 1000 problem flows: a follower that falls behind is told how
many it missed.

For a daemon started with --web.config.file, give --username and
--password-file for basic auth, and --tls-ca (or --insecure-skip-verify)
for an https:// server whose certificate is not in the system's pool.`,
		Example: `  tpwatch observe
  tpwatch observe --follow --verdict blocked
  tpwatch observe --server https://em01:19740 --tls-ca ca.pem --username admin --password-file pw --follow
  tpwatch observe --host 198.51.100.0/24 --port 3741 --output json | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.observe(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "http://localhost:19740", "base URL of the tpwatch daemon's metrics listener")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing new flows until interrupted")
	fl.StringArrayVar(&f.verdicts, "verdict", nil, "only flows of this verdict: blocked or unexpected (repeatable, or comma-separated)")
	fl.StringArrayVar(&f.hosts, "host", nil, "only flows with an end in this address or prefix (repeatable, or comma-separated)")
	fl.StringArrayVar(&f.rules, "rule", nil, "only flows of this rule id (repeatable, or comma-separated)")
	fl.StringArrayVar(&f.ports, "port", nil, "only flows to this server port (repeatable, or comma-separated)")
	fl.IntVar(&f.last, "last", 20, "print the last N flows first")
	fl.StringVarP(&f.output, "output", "o", "table", "output: table (a line a flow) or json (one object a line, the fields of replay --format json plus seq and interface)")
	fl.DurationVar(&f.interval, "interval", time.Second, "--follow: how often to ask for new flows")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "time limit of each request")
	fl.StringVar(&f.username, "username", "", "basic auth user name")
	fl.StringVar(&f.passwordFile, "password-file", "", "file holding the basic auth password (its first line)")
	fl.StringVar(&f.tlsCA, "tls-ca", "", "PEM file of the certificate authority that signed the server's certificate")
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "do not check the server's certificate (tests only)")
	return cmd
}

// observed is the flow API's answer.
type observed struct {
	Flows   []json.RawMessage `json:"flows"`
	LastSeq uint64            `json:"last_seq"`
	Lost    uint64            `json:"lost"`
}

// observer asks a daemon's flow API.
type observer struct {
	client   *http.Client
	base     *url.URL
	query    url.Values
	user     string
	password string
}

func (f *observeFlags) observer() (*observer, error) {
	switch {
	case f.output != "table" && f.output != "json":
		return nil, fmt.Errorf("--output %q: want table or json", f.output)
	case f.last < 1:
		return nil, fmt.Errorf("--last %d: want 1 or more", f.last)
	case f.interval < 100*time.Millisecond:
		return nil, fmt.Errorf("--interval %v: want 100ms or more", f.interval)
	case f.timeout <= 0:
		return nil, fmt.Errorf("--timeout %v: want a positive duration", f.timeout)
	case f.passwordFile != "" && f.username == "":
		return nil, errors.New("--password-file needs --username")
	}
	base, err := url.Parse(f.server)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("--server %q: want a URL such as http://localhost:19740", f.server)
	}
	// The filters are checked here, so that a typo is a usage error and
	// not a 400 from the daemon.
	if _, err := report.ParseVerdicts(f.verdicts); err != nil {
		return nil, fmt.Errorf("--verdict: %w", err)
	}
	if _, err := report.ParseHosts(f.hosts); err != nil {
		return nil, fmt.Errorf("--host: %w", err)
	}
	if _, err := report.ParsePorts(f.ports); err != nil {
		return nil, fmt.Errorf("--port: %w", err)
	}
	o := &observer{base: base, query: url.Values{}, user: f.username}
	for key, list := range map[string][]string{"verdict": f.verdicts, "host": f.hosts, "rule": f.rules, "port": f.ports} {
		if len(list) > 0 {
			o.query.Set(key, strings.Join(list, ","))
		}
	}
	if f.passwordFile != "" {
		data, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
		o.password, _, _ = strings.Cut(string(data), "\n")
		o.password = strings.TrimRight(o.password, "\r")
	}
	tlsConfig := &tls.Config{InsecureSkipVerify: f.insecure}
	if f.tlsCA != "" {
		pem, err := os.ReadFile(f.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", f.tlsCA)
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	o.client = &http.Client{Timeout: f.timeout, Transport: transport}
	return o, nil
}

// get asks for the flows after seq (or the last limit ones when since is
// false).
func (o *observer) get(ctx context.Context, since bool, seq uint64, limit int) (*observed, error) {
	q := url.Values{}
	for k, v := range o.query {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(limit))
	if since {
		q.Set("since", strconv.FormatUint(seq, 10))
	}
	u := o.base.JoinPath("api/v1/flows")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if o.user != "" {
		req.SetBasicAuth(o.user, o.password)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("cannot reach tpwatch at %s: %w", o.base.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%s: %s: the daemon asks for credentials (--username, --password-file)", u.Redacted(), resp.Status)
	case http.StatusNotFound:
		return nil, fmt.Errorf("%s: %s: is this a tpwatch daemon of this version?", u.Redacted(), resp.Status)
	default:
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s: %s: %s", u.Redacted(), resp.Status, e.Error)
		}
		return nil, fmt.Errorf("%s: %s", u.Redacted(), resp.Status)
	}
	var out observed
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("%s: not a flow API answer: %w", u.Redacted(), err)
	}
	return &out, nil
}

// followBatch is the most flows one follow request asks for: the daemon
// keeps 1000.
const followBatch = 1000

func (a *app) observe(ctx context.Context, f *observeFlags) error {
	o, err := f.observer()
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := flowPrinter{w: a.stdout, json: f.output == "json", paint: texttable.NewPainter(texttable.ColorWanted(isTerminal(a.stdout)))}

	ans, err := o.get(ctx, false, 0, f.last)
	if err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if err := p.print(ans.Flows); err != nil {
		return &exitStatus{code: exitError, err: err}
	}
	if !f.follow {
		return nil
	}
	seq := ans.LastSeq
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // Ctrl-C ends a follow: not an error
		case <-tick.C:
		}
		ans, err := o.get(ctx, true, seq, followBatch)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// A daemon restarting or a network hiccup: say so, and
			// keep asking.
			fmt.Fprintf(a.stderr, "tpwatch: observe: %s\n", oneLine(err.Error()))
			continue
		}
		if ans.LastSeq < seq {
			// The daemon restarted: its numbers start again.
			seq = 0
			if ans, err = o.get(ctx, true, 0, followBatch); err != nil {
				continue
			}
		}
		if ans.Lost > 0 {
			fmt.Fprintf(a.stderr, "tpwatch: observe: %d flows left the daemon's ring before they were read (ask more often with --interval, or filter)\n", ans.Lost)
		}
		if err := p.print(ans.Flows); err != nil {
			return &exitStatus{code: exitError, err: err}
		}
		seq = ans.LastSeq
	}
}

// flowPrinter writes flows one a line.
type flowPrinter struct {
	w     io.Writer
	json  bool
	paint texttable.Painter
}

// apiFlow is the part of a flow a line shows.
type apiFlow struct {
	Seq       uint64   `json:"seq"`
	Interface string   `json:"interface"`
	TSFirst   string   `json:"ts_first"`
	Transport string   `json:"transport"`
	SrcIP     string   `json:"src_ip"`
	SrcPort   uint16   `json:"src_port"`
	DstIP     string   `json:"dst_ip"`
	DstPort   uint16   `json:"dst_port"`
	SrcRoles  []string `json:"src_roles"`
	DstRoles  []string `json:"dst_roles"`
	Rule      string   `json:"rule"`
	Verdict   string   `json:"verdict"`
	Reason    string   `json:"reason"`
	Outcome   string   `json:"outcome"`
	ConnState string   `json:"conn_state"`
	History   string   `json:"history"`
	ICMPType  *int     `json:"icmp_type"`
	ICMPCode  *int     `json:"icmp_code"`
	ICMPSrc   string   `json:"icmp_src"`
}

func (p *flowPrinter) print(flows []json.RawMessage) error {
	for _, raw := range flows {
		if p.json {
			if _, err := fmt.Fprintf(p.w, "%s\n", raw); err != nil {
				return err
			}
			continue
		}
		var f apiFlow
		if err := json.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("a flow of the API: %w", err)
		}
		if _, err := io.WriteString(p.w, p.line(&f)+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// line writes a flow as hubble observe does: when, where, who to whom,
// and what tpwatch made of it.
//
//	2026-01-05 09:01:10.000 eth0: 198.51.100.22:50312 (agent) -> 192.0.2.10:3741/tcp (enterprise-manager) BLOCKED no answer [agent-em-grpc] S0 S
func (p *flowPrinter) line(f *apiFlow) string {
	when := f.TSFirst
	if t, err := time.Parse(time.RFC3339Nano, f.TSFirst); err == nil {
		when = t.Format("2006-01-02 15:04:05.000")
	}
	roles := func(list []string) string {
		if len(list) == 0 {
			return "(no role)"
		}
		return "(" + strings.Join(list, ",") + ")"
	}
	verdict := strings.ToUpper(f.Verdict)
	color := texttable.Red
	how := strings.ReplaceAll(f.Reason, "_", " ")
	switch {
	case f.Verdict == "unexpected":
		color = texttable.Yellow
		how += ", " + strings.ReplaceAll(f.Outcome, "_", " ")
	case f.ICMPSrc != "" && f.ICMPType != nil && f.ICMPCode != nil:
		how = fmt.Sprintf("rejected by %s (ICMP %d/%d)", f.ICMPSrc, *f.ICMPType, *f.ICMPCode)
	case f.Reason == "no_response":
		how = "no answer"
	case f.Reason == "refused":
		how = "reset"
	}
	rule := f.Rule
	if rule == "" {
		rule = "no rule"
	}
	return fmt.Sprintf("%s %s: %s:%d %s -> %s:%d/%s %s %s %s [%s] %s %s", when, f.Interface,
		hostPort(f.SrcIP), f.SrcPort, roles(f.SrcRoles), hostPort(f.DstIP), f.DstPort, f.Transport, roles(f.DstRoles),
		p.paint.Paint(color, verdict), how, rule, f.ConnState, f.History)
}

// hostPort brackets an IPv6 address, to be followed by :port.
func hostPort(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}
