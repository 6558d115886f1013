package capture

import (
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tpwatch/tpwatch/internal/testenv"
)

// manifestEntry is what MANIFEST.tsv says tshark found in one capture.
type manifestEntry struct {
	path     string
	tsharkOK bool
	packets  int // -1 when not a number
	format   string
}

func readManifest(t testing.TB, corpus string) []manifestEntry {
	t.Helper()
	rows := testenv.Manifest(t, corpus)
	for _, name := range []string{"path", "packets", "tshark_ok", "format"} {
		if _, ok := rows[0][name]; !ok {
			t.Fatalf("MANIFEST.tsv has no %q column", name)
		}
	}
	var entries []manifestEntry
	for _, row := range rows {
		e := manifestEntry{path: row["path"], tsharkOK: row["tshark_ok"] == "yes", packets: -1, format: row["format"]}
		if n, err := strconv.Atoi(row["packets"]); err == nil {
			e.packets = n
		}
		entries = append(entries, e)
	}
	return entries
}

// corpusCountExceptions are captures where our record count differs from
// tshark's on purpose.
var corpusCountExceptions = map[string]string{}

// fileResult is what reading one corpus capture gave.
type fileResult struct {
	records  int
	statuses [StatusUnsupportedLink + 1]int
	err      error
}

func readAndDecode(path string) fileResult {
	var res fileResult
	r, err := OpenFile(path)
	if err != nil {
		res.err = err
		return res
	}
	defer r.Close()
	var rec Record
	var p Packet
	for {
		if err := r.Next(&rec); err != nil {
			if !errors.Is(err, io.EOF) {
				res.err = err
			}
			return res
		}
		res.records++
		p.TS, p.WireLen = rec.TS, rec.WireLen
		res.statuses[Decode(rec.Link, rec.Data, &p)]++
	}
}

func TestCorpus(t *testing.T) {
	corpus := testenv.Corpus(t)
	entries := readManifest(t, corpus)
	if len(entries) < 1000 {
		t.Fatalf("MANIFEST.tsv lists %d captures; expected the full corpus", len(entries))
	}
	var full, failed, compared, agree, excepted int
	var statuses [StatusUnsupportedLink + 1]int
	for _, e := range entries {
		done := make(chan fileResult, 1)
		go func() { done <- readAndDecode(filepath.Join(corpus, e.path)) }()
		var res fileResult
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: not read within 10 s", e.path)
			continue
		}
		for i, n := range res.statuses {
			statuses[i] += n
		}
		if res.err != nil {
			failed++
			t.Logf("%s: %d records, then %v", e.path, res.records, res.err)
		} else {
			full++
		}
		if !e.tsharkOK || e.packets < 0 {
			continue
		}
		compared++
		if why, ok := corpusCountExceptions[e.path]; ok {
			excepted++
			if res.records == e.packets {
				t.Errorf("%s: listed as an exception (%s) but now agrees with tshark: remove it", e.path, why)
			}
			continue
		}
		if res.records != e.packets {
			t.Errorf("%s: %d records, tshark counts %d (err: %v)", e.path, res.records, e.packets, res.err)
		} else {
			agree++
		}
	}
	t.Logf("corpus: %d captures, %d read to the end, %d stopped with an error", len(entries), full, failed)
	t.Logf("record counts vs tshark: %d compared, %d agree, %d explained exceptions", compared, agree, excepted)
	t.Logf("decode: ok %d, not_ip %d, truncated %d, malformed %d, unsupported_link %d",
		statuses[StatusOK], statuses[StatusNotIP], statuses[StatusTruncated], statuses[StatusMalformed], statuses[StatusUnsupportedLink])
}
