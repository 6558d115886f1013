package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// The product document is the source of truth for the matrix. These tests
// read its tables with a parser of their own and check the embedded matrix
// against every row, both ways.

// firewallDoc names the product document in messages; testenv finds it.
const firewallDoc = "firewall-ports.md"

// docRow is one row of a document table, read into roles and ports.
type docRow struct {
	line       int
	section    string // the "## " heading
	subsection string // the "**...**" heading under it, if any
	client     Role   // RoleInvalid with anyClient
	anyClient  bool
	server     Role
	transports []Transport
	ports      []PortRange
}

func (r docRow) String() string {
	client := anyClient
	if !r.anyClient {
		client = r.client.String()
	}
	return fmt.Sprintf("%s:%d (%s → %s %v %v)", filepath.Base(firewallDoc), r.line, client, r.server, r.transports, r.ports)
}

func readFirewallDoc(t *testing.T) []docRow {
	t.Helper()
	data, err := os.ReadFile(testenv.Shared(t, "seed", "firewall-ports.md"))
	if err != nil {
		t.Fatalf("read the product document: %v", err)
	}
	rows, errs := parseFirewallDoc(string(data))
	for _, e := range errs {
		t.Error(e)
	}
	if len(rows) == 0 {
		t.Fatal("no table rows found in the document")
	}
	return rows
}

// parseFirewallDoc reads every table of the document. A row or a table it
// cannot map is an error: a new row must be looked at, not skipped.
func parseFirewallDoc(doc string) ([]docRow, []error) {
	var (
		rows                []docRow
		errs                []error
		section, subsection string
		header              []string // columns of the current table
		tableStart          int
	)
	lines := strings.Split(doc, "\n")
	for i, line := range lines {
		lineNo := i + 1
		// The document has no-break spaces in places ("NAS\u00a0Device").
		trimmed := strings.Join(strings.Fields(line), " ")
		switch {
		case strings.HasPrefix(trimmed, "## "):
			section, subsection = strings.TrimPrefix(trimmed, "## "), ""
		case strings.HasPrefix(trimmed, "**") && strings.HasSuffix(trimmed, "**") && len(trimmed) > 4:
			subsection = strings.Trim(trimmed, "*")
		}
		if !strings.HasPrefix(trimmed, "|") {
			header = nil
			continue
		}
		cells := tableCells(trimmed)
		if header == nil {
			header, tableStart = cells, lineNo
			want := []string{"Communication Direction", "Protocol", "Ports", "Description"}
			if strings.Join(header, "|") != strings.Join(want, "|") {
				errs = append(errs, fmt.Errorf("line %d: a table with columns %q, want %q: teach the test this table", lineNo, header, want))
			}
			continue
		}
		if lineNo == tableStart+1 { // the |---|---| separator
			continue
		}
		if len(cells) != len(header) {
			errs = append(errs, fmt.Errorf("line %d: %d cells, want %d", lineNo, len(cells), len(header)))
			continue
		}
		row := docRow{line: lineNo, section: section, subsection: subsection}
		var err error
		if row.client, row.anyClient, row.server, err = directionRoles(cells[0], section, subsection); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", lineNo, err))
			continue
		}
		if row.transports, err = docTransports(cells[1]); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", lineNo, err))
			continue
		}
		if row.ports, err = docPorts(cells[2]); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", lineNo, err))
			continue
		}
		rows = append(rows, row)
	}
	return rows, errs
}

func tableCells(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// docEndpoints maps the names the document gives the two ends of a flow
// ("X to Y") to roles. "NetApp" and "Dell Device" depend on the table.
var docEndpoints = map[string]Role{
	"Enterprise Manager": EnterpriseManager,
	"SQL Server":         SQLServer,
	"Agents":             Agent,
	"Netwrix Threat Prevention Windows Agent": Agent,
	"Agent Server":          Agent,
	"Activity Agent Server": Agent,
	"Activity Agent Server (when not same server)": Agent,
	"Threat Manager": ThreatManager,
	"Netwrix Threat Manager Reporting Integration Service": ThreatManager,
	"Administration Console":                               AdminConsole,
	"Remote Administration Console":                        AdminConsole,
	"Activity Monitor":                                     ActivityMonitor,
	"CEE Server":                                           CEEServer,
	"Dell Isilon/PowerScale":                               DellIsilon,
	"Nasuni":                                               Nasuni,
	"Panzura":                                              Panzura,
	"Panzura filers":                                       Panzura,
}

// directionRoles reads the "Communication Direction" cell, with the
// headings above the table for the texts that need them.
func directionRoles(dir, section, subsection string) (client Role, any bool, server Role, err error) {
	switch dir {
	case "Inbound Netwrix Threat Prevention Enterprise Manager Agent Communication":
		return Agent, false, EnterpriseManager, nil
	case "Inbound Netwrix Threat Prevention Enterprise Manager Remote Console":
		return AdminConsole, false, EnterpriseManager, nil
	case "Bidirectional":
		if section == "Netwrix Threat Manager Reporting Module Ports" && subsection == "Application Console Access Firewall Rules" {
			return RoleInvalid, true, ThreatManager, nil
		}
	case "Outbound":
		if section == "Netwrix Threat Manager Reporting Module Ports" && subsection == "Active Directory Domain Controllers Firewall Rules" {
			return ThreatManager, false, DomainController, nil
		}
	case "Dell Device CEE Server": // the "to" is missing: device to CEE server
		if device, ok := docDevice(subsection); ok {
			return device, false, CEEServer, nil
		}
	default:
		text := strings.TrimPrefix(strings.TrimPrefix(dir, "Outbound "), "Inbound ")
		from, to, ok := strings.Cut(text, " to ")
		if !ok {
			break
		}
		to = strings.TrimPrefix(to, "to ") // "Panzura filers to to Activity Agent Server"
		client, cok := docEndpoint(from, subsection)
		server, sok := docEndpoint(to, subsection)
		if cok && sok {
			return client, false, server, nil
		}
	}
	return 0, false, 0, fmt.Errorf("cannot map direction %q under %q / %q: teach docEndpoints or directionRoles", dir, section, subsection)
}

func docEndpoint(name, subsection string) (Role, bool) {
	name = strings.TrimSuffix(name, `\*`) // the footnote mark of the ONTAPI rows
	if name == "NetApp" {
		return docDevice(subsection)
	}
	r, ok := docEndpoints[name]
	return r, ok
}

// docDevice is the device a NAS table is about, from its heading.
func docDevice(subsection string) (Role, bool) {
	switch {
	case strings.HasPrefix(subsection, "Dell Celerra & Dell VNX"):
		return DellCelerraVNX, true
	case strings.HasPrefix(subsection, "Dell Unity"):
		return DellUnity, true
	case strings.HasPrefix(subsection, "NetApp Data ONTAP 7-Mode"):
		return NetApp7Mode, true
	case strings.HasPrefix(subsection, "NetApp Data ONTAP Cluster-Mode"):
		return NetAppCDOT, true
	}
	return 0, false
}

// docTransports reads the Protocol cell: "TCP", "TCP/UDP", "gRPC / TCP",
// "SQL Client / UDP", "HTTPS (optional)", "AMQP over TCP".
func docTransports(cell string) ([]Transport, error) {
	var out []Transport
	for _, part := range strings.Split(cell, "/") {
		part = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), "(optional)"))
		switch part {
		case "TCP", "HTTP", "HTTPS", "AMQP over TCP":
			out = append(out, TCP)
		case "UDP":
			out = append(out, UDP)
		case "gRPC", "SQL Client", "RPC", "DCOM":
			// An application protocol, with its transport in another part.
		default:
			return nil, fmt.Errorf("cannot map protocol %q (part %q)", cell, part)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("protocol %q names no transport", cell)
	}
	return out, nil
}

// dynamicRange is Microsoft's default dynamic port range, which the
// document calls "RPC Dynamic Range", "Dynamic Range" and, for the domain
// controller, "Various ... (Ephemeral Ports)".
var dynamicRange = PortRange{49152, 65535}

// docPorts reads the Ports cell: "3741", "10000, 10001", "1024-65535",
// "TCP 12228", "RPC Dynamic Range", "Various",
// "135, 139 <br />Dynamic Range (49152-65535)".
func docPorts(cell string) ([]PortRange, error) {
	var out []PortRange
	for _, item := range strings.Split(strings.ReplaceAll(cell, "<br />", ","), ",") {
		item = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(item), "TCP "))
		switch {
		case item == "RPC Dynamic Range", item == "Dynamic Range", item == "Various":
			out = append(out, dynamicRange)
			continue
		case strings.HasPrefix(item, "Dynamic Range (") && strings.HasSuffix(item, ")"):
			item = strings.TrimSuffix(strings.TrimPrefix(item, "Dynamic Range ("), ")")
		}
		low, high, isRange := strings.Cut(item, "-")
		lo, err := strconv.ParseUint(low, 10, 16)
		hi := lo
		if err == nil && isRange {
			hi, err = strconv.ParseUint(high, 10, 16)
		}
		if err != nil || lo == 0 || lo > hi {
			return nil, fmt.Errorf("cannot map ports %q (item %q)", cell, item)
		}
		out = append(out, PortRange{uint16(lo), uint16(hi)})
	}
	return out, nil
}

// checkPorts are the ports of a range the tests try: all of a small one,
// the ends and the middle of a large one.
func checkPorts(pr PortRange) []uint16 {
	if int(pr.High)-int(pr.Low) < 16 {
		var ports []uint16
		for p := int(pr.Low); p <= int(pr.High); p++ {
			ports = append(ports, uint16(p))
		}
		return ports
	}
	return []uint16{pr.Low, pr.Low + (pr.High-pr.Low)/2, pr.High}
}

// TestDocumentRowsAllowed checks that every (client, server, transport,
// port) of every document row is allowed by a rule of the default matrix
// with exactly those roles, from the document section it is listed in.
func TestDocumentRowsAllowed(t *testing.T) {
	rows := readFirewallDoc(t)
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range rowsNotAllowed(t, rows, m) {
		t.Error(problem)
	}
}

// TestMatrixRulesDocumented checks the other way: every port of every
// matrix rule is listed by a document row with the rule's roles and
// transport, so that no rule is invented.
func TestMatrixRulesDocumented(t *testing.T) {
	rows := readFirewallDoc(t)
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range rulesNotDocumented(rows, m) {
		t.Error(problem)
	}
	for id := range undocumentedRules {
		if !slices.ContainsFunc(m.Rules, func(r Rule) bool { return r.ID == id }) {
			t.Errorf("undocumentedRules names %s, which is not a matrix rule", id)
		}
	}
}

// TestDocumentChecksCanFail runs both checks on broken matrices.
func TestDocumentChecksCanFail(t *testing.T) {
	rows := readFirewallDoc(t)
	m, err := DefaultMatrix()
	if err != nil {
		t.Fatal(err)
	}
	missing := &Matrix{Rules: slices.DeleteFunc(slices.Clone(m.Rules), func(r Rule) bool { return r.ID == "isilon-cee" })}
	if problems := rowsNotAllowed(t, rows, missing); len(problems) != 1 || !strings.Contains(problems[0], "port 12228") {
		t.Errorf("a matrix without isilon-cee: problems %q, want one about 12228", problems)
	}
	invented := &Matrix{Rules: slices.Clone(m.Rules)}
	invented.Rules[0].Ports = []PortRange{{3741, 3741}, {3742, 3742}}
	if problems := rulesNotDocumented(rows, invented); len(problems) != 1 || !strings.Contains(problems[0], "tcp 3742") {
		t.Errorf("a matrix with an invented port: problems %q, want one about 3742", problems)
	}
	wrongRole := &Matrix{Rules: slices.Clone(m.Rules)}
	wrongRole.Rules[0].Client = AdminConsole // agent-em-grpc
	if problems := rulesNotDocumented(rows, wrongRole); len(problems) != 1 {
		t.Errorf("a matrix with a wrong client role: problems %q, want one", problems)
	}
}

func rowsNotAllowed(t *testing.T, rows []docRow, m *Matrix) []string {
	t.Helper()
	// Every feature on: the document lists the optional rows too.
	p, err := Compile(m, &Config{Features: map[string]bool{FeatureWMIAutoDeploy: true, FeatureFPolicyManagement: true}})
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, row := range rows {
		var client RoleSet
		if !row.anyClient {
			client = client.With(row.client)
		}
		for _, tr := range row.transports {
			for _, pr := range row.ports {
				for _, port := range checkPorts(pr) {
					match := p.Match(Flow{Client: testClient, Server: testServer, Transport: tr, ClientRoles: client, ServerRoles: RoleSet(0).With(row.server), Port: port})
					if match.Kind != MatchAllowed {
						problems = append(problems, fmt.Sprintf("%v: %s port %d is %s, want allowed", row, tr, port, match.Kind))
						continue
					}
					r := p.Rules()[match.Rule]
					if r.AnyClient != row.anyClient || r.Client != row.client || r.Server != row.server {
						problems = append(problems, fmt.Sprintf("%v: %s port %d allowed by %s (%s → %s), want the roles of the row",
							row, tr, port, r.ID, r.ClientName(), r.Server))
					}
					if !sectionNames(r.Section, row.section, row.subsection) {
						problems = append(problems, fmt.Sprintf("%v: rule %s has section %q, want it to name %q or %q",
							row, r.ID, r.Section, row.section, row.subsection))
					}
				}
			}
		}
	}
	return problems
}

func sectionNames(ruleSection string, names ...string) bool {
	for _, s := range strings.Split(ruleSection, "; ") {
		for _, name := range names {
			if name != "" && s == name {
				return true
			}
		}
	}
	return false
}

// undocumentedRules are matrix rules that the document does not list, each
// with the reason. None today: every rule comes from a row.
var undocumentedRules = map[string]string{}

func rulesNotDocumented(rows []docRow, m *Matrix) []string {
	var problems []string
	for _, r := range m.Rules {
		if _, ok := undocumentedRules[r.ID]; ok {
			continue
		}
		for _, pr := range r.Ports {
			if !documented(rows, &r, pr) {
				problems = append(problems, fmt.Sprintf("rule %s: %s %s from %s to %s is in no row of the document",
					r.ID, r.Transport, pr, r.ClientName(), r.Server))
			}
		}
	}
	return problems
}

// documented reports whether a row with the rule's roles and transport
// lists every port of pr.
func documented(rows []docRow, r *Rule, pr PortRange) bool {
	for _, row := range rows {
		if row.anyClient != r.AnyClient || row.client != r.Client || row.server != r.Server {
			continue
		}
		for _, tr := range row.transports {
			if tr != r.Transport {
				continue
			}
			for _, dp := range row.ports {
				if dp.Low <= pr.Low && pr.High <= dp.High {
					return true
				}
			}
		}
	}
	return false
}

// TestParseFirewallDocRejects checks that the parser refuses what it cannot
// map instead of skipping it.
func TestParseFirewallDocRejects(t *testing.T) {
	const table = "| Communication Direction | Protocol | Ports | Description |\n| --- | --- | --- | --- |\n"
	tests := []struct{ name, doc, want string }{
		{"unknown direction", "## X\n" + table + "| Backup Server to Agents | TCP | 1 | x |\n", `cannot map direction "Backup Server to Agents"`},
		{"outbound elsewhere", "## X\n" + table + "| Outbound | TCP | 1 | x |\n", `cannot map direction "Outbound"`},
		{"unknown protocol", "## X\n" + table + "| Agent Server to Nasuni | SCTP | 1 | x |\n", `cannot map protocol "SCTP"`},
		{"unknown ports", "## X\n" + table + "| Agent Server to Nasuni | TCP | Many | x |\n", `cannot map ports "Many"`},
		{"other table", "## X\n| Port | Use |\n| --- | --- |\n| 1 | x |\n", `a table with columns`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parseFirewallDoc(tt.doc)
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("errors %v, want one containing %q", errs, tt.want)
			}
		})
	}
	rows, errs := parseFirewallDoc("**NetApp Data ONTAP 7-Mode Device Additional Firewall Rules**\n" + table +
		"| Activity Agent Server to NetApp\\* | HTTPS (optional) | 135, 139 <br />Dynamic Range (49152-65535) | x |\n")
	if len(errs) != 0 || len(rows) != 1 {
		t.Fatalf("rows %v, errors %v", rows, errs)
	}
	want := docRow{line: 4, subsection: "NetApp Data ONTAP 7-Mode Device Additional Firewall Rules", client: Agent, server: NetApp7Mode,
		transports: []Transport{TCP}, ports: []PortRange{{135, 135}, {139, 139}, {49152, 65535}}}
	if fmt.Sprint(rows[0]) != fmt.Sprint(want) || rows[0].subsection != want.subsection {
		t.Errorf("row %v, want %v", rows[0], want)
	}
}
