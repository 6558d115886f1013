package dissect

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// The fuzz targets' corpus seeds are real frames, read from the shared
// corpus (never copied into the repository as captures) and written in
// Go's fuzz corpus format as testdata/fuzz/<Target>/seed-<name>:
//
//	go test ./dissect -run TestFuzzSeeds -update-seeds
//
// Without the flag, TestFuzzSeeds checks that the committed seeds are
// still what the corpus gives.
var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/*/seed-* from the shared corpus")

const (
	mapiPcap      = "protocols/zeek/dce-rpc/mapi.pcap"
	dcshadowPcap  = "protocols/pcap-attack/CredAccess/DCShadow_add_primarygroupid_512_to_std_account.pcapng"
	zerologonPcap = "protocols/pcap-attack/Lateral_Movement/zerologon_mimikatz_ntlm_privacy_scan_and_exploit_encrypted.pcapng"
	wmiPcap       = "enterprise/pcap-attack/Lateral_Movement/LM_WMI_ProcessCallCreate.pcapng"
	rpcdumpPcap   = "protocols/pcap-attack/Discovery/Discovery_impacket_rpcdump.pcapng"
	suricataPcap  = "protocols/suricata-verify/dcerpc/zerologon/input.pcap"
)

// epmSeeds are connections to port 135 named by research notes 1.11: the
// frames of each, in order.
var epmSeeds = []struct {
	name   string
	file   string
	frames []int
}{
	{"mapi-nspi", mapiPcap, []int{397, 398, 399, 400}},
	{"mapi-emsmdb", mapiPcap, []int{702, 703, 704, 705}},
	{"mapi-lookup", mapiPcap, []int{498, 500, 501, 505}},
	{"dcshadow-ndr64", dcshadowPcap, []int{24, 25, 26, 27}},
	{"dcshadow-not-registered", dcshadowPcap, []int{43, 44, 45, 46, 47, 48, 49, 50, 55}},
	{"zerologon-two-towers-ntlm", zerologonPcap, []int{1, 2, 3, 4, 5}},
	{"suricata-zerologon-midstream", suricataPcap, []int{8}},
	{"wmi-activation", wmiPcap, []int{18, 19, 21, 22, 23, 24, 25}},
	{"rpcdump-lookup-fragments", rpcdumpPcap, []int{1, 2, 3, 4, 5, 6, 7, 8}},
}

// stubSeeds are ept_map stubs (answers, then requests) for FuzzEPMStub:
// the frame's payload after the 24-byte header, without the auth trailer.
var stubSeeds = []struct {
	name      string
	file      string
	frame     int
	authBytes int // auth_pad + sec_trailer + auth_value at the end
}{
	{"mapi-400-ndr", mapiPcap, 400, 0},
	{"mapi-705-ndr", mapiPcap, 705, 0},
	{"dcshadow-27-ndr64", dcshadowPcap, 27, 0},
	{"dcshadow-46-ndr64-not-registered", dcshadowPcap, 46, 0},
	{"zerologon-5-ndr64-two-towers", zerologonPcap, 5, 12 + 8 + 16},
	{"suricata-8-ndr", suricataPcap, 8, 0},
	{"mapi-399-request-ndr", mapiPcap, 399, 0},
	{"dcshadow-26-request-ndr64", dcshadowPcap, 26, 0},
}

// appSeeds are the first payloads of identifyCases, by frame.
func appSeedFrames() map[string]*corpusFrame {
	m := map[string]*corpusFrame{}
	for name, f := range corpusFrames {
		for _, c := range identifyCases {
			if c.frame == f {
				m[name] = f
			}
		}
	}
	return m
}

// seedFiles reads the corpus and returns the content of every seed file,
// by path under testdata/fuzz.
func seedFiles(t *testing.T) map[string]string {
	dir := testenv.Corpus(t)
	files := map[string]string{}
	type seedFrame struct {
		payload    []byte
		payloadLen int
		fromServer bool // on port 135, by the port
	}
	frames := map[string]map[int]*seedFrame{} // file → frame number → frame
	need := func(file string, frame int) {
		if frames[file] == nil {
			frames[file] = map[int]*seedFrame{}
		}
		frames[file][frame] = nil
	}
	for _, s := range epmSeeds {
		for _, n := range s.frames {
			need(s.file, n)
		}
	}
	for _, s := range stubSeeds {
		need(s.file, s.frame)
	}
	apps := appSeedFrames()
	for _, f := range apps {
		need(f.file, f.frame)
	}
	for file, want := range frames {
		eachCorpusPacket(t, filepath.Join(dir, file), func(p *corpusPacket) bool {
			if _, ok := want[p.frame]; ok {
				want[p.frame] = &seedFrame{bytes.Clone(p.payload), p.payloadLen, p.srcPort == 135}
			}
			return true
		})
		for n, b := range want {
			if b == nil {
				t.Fatalf("%s has no TCP or UDP frame %d", file, n)
			}
		}
	}
	for _, s := range epmSeeds {
		var in []byte
		for _, n := range s.frames {
			fr := frames[s.file][n]
			var ctl byte
			if fr.fromServer {
				ctl |= fuzzFromServer
			}
			if len(fr.payload) < fr.payloadLen {
				ctl |= fuzzCut
			}
			in = fuzzRecord(in, ctl, fr.payload)
		}
		files["FuzzEPM/seed-"+s.name] = corpusFile(in)
	}
	for _, s := range stubSeeds {
		b := frames[s.file][s.frame].payload
		stub := b[rpcCallHeaderLen : len(b)-s.authBytes]
		files["FuzzEPMStub/seed-"+s.name] = corpusFile(stub, uint8(SyntaxUnknown), false)
		if s.frame == 705 {
			files["FuzzDCOM/seed-no-binding-"+s.name] = corpusFile(stub)
		}
	}
	wmi := frames[wmiPcap][25].payload
	files["FuzzDCOM/seed-wmi-25-remotecreateinstance"] = corpusFile(wmi[rpcCallHeaderLen:])
	for name, f := range apps {
		fr := frames[f.file][f.frame]
		files["FuzzApp/seed-"+name] = corpusFile(uint8(f.transport), fr.payload, uint16(fr.payloadLen-len(fr.payload)))
	}
	return files
}

// corpusFile writes values in Go's fuzz corpus format (as
// testing/internal/fuzz marshals them).
func corpusFile(values ...any) string {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case uint16:
			fmt.Fprintf(&b, "uint16(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			panic(fmt.Sprintf("corpusFile: %T", v))
		}
	}
	return b.String()
}

func TestFuzzSeeds(t *testing.T) {
	want := seedFiles(t)
	root := filepath.Join("testdata", "fuzz")
	if *updateSeeds {
		old, _ := filepath.Glob(filepath.Join(root, "*", "seed-*"))
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		for name, content := range want {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("wrote %d seeds", len(want))
		return
	}
	have, _ := filepath.Glob(filepath.Join(root, "*", "seed-*"))
	var names []string
	for _, p := range have {
		name, _ := filepath.Rel(root, p)
		names = append(names, filepath.ToSlash(name))
	}
	sort.Strings(names)
	for _, name := range names {
		content, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		switch w, ok := want[name]; {
		case !ok:
			t.Errorf("%s is no longer a seed: run with -update-seeds", name)
		case string(content) != w:
			t.Errorf("%s differs from the corpus: run with -update-seeds", name)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("seed %s is missing: run with -update-seeds", name)
	}
}
