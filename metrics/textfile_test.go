package metrics

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tpwatch/tpwatch/classifier"
)

func textfileRegistry() *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewBuildInfoCollector("1.2.3", "abc123"))
	reg.MustRegister(NewFlowTableCollector(func() classifier.Stats { return classifier.Stats{Active: 7} }))
	return reg
}

func TestWriteTextfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tpwatch.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextfile(path, textfileRegistry()); err != nil {
		t.Fatalf("WriteTextfile: %v", err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("textfile does not parse: %v\n%s", err, data)
	}
	if got := families["tpwatch_flow_table_entries"].GetMetric()[0].GetGauge().GetValue(); got != 7 {
		t.Errorf("tpwatch_flow_table_entries = %v, want 7", got)
	}
	if _, ok := families["tpwatch_build_info"]; !ok {
		t.Error("tpwatch_build_info missing from the textfile")
	}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				t.Errorf("%s has a timestamp; the textfile collector rejects them", name)
			}
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("mode %v, want 0644 so node_exporter can read it", perm)
	}
	assertNoTempFiles(t, filepath.Dir(path))
}

// timestampGatherer returns a family whose metric carries a timestamp, as a
// gatherer wrapping pushed or federated metrics might.
type timestampGatherer struct{}

func (timestampGatherer) Gather() ([]*dto.MetricFamily, error) {
	name, help, ts, v := "tpwatch_test_gauge", "x", int64(1700000000000), 1.0
	typ := dto.MetricType_GAUGE
	return []*dto.MetricFamily{{Name: &name, Help: &help, Type: &typ,
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}, TimestampMs: &ts}}}}, nil
}

func TestWriteTextfileDropsTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ts.prom")
	if err := WriteTextfile(path, timestampGatherer{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "tpwatch_test_gauge 1\n"; !strings.Contains(string(data), want) {
		t.Errorf("textfile:\n%s\nwant a line %q without timestamp", data, want)
	}
}

func TestWriteTextfileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "tpwatch.prom")
	err := WriteTextfile(path, textfileRegistry())
	if err == nil {
		t.Fatal("WriteTextfile into a missing directory succeeded")
	}
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should wrap ErrNotExist and name %s", err, path)
	}
}

func TestWriteTextfileReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; the failed-write path is covered by TestWriteFileAtomicFailureKeepsOldFile")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tpwatch.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	err := WriteTextfile(path, textfileRegistry())
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v should wrap ErrPermission and name %s", err, path)
	}
	assertFileIs(t, path, "old\n")
}

// A full disk shows up as ENOSPC from a write; the old file must survive
// and the temporary one must go.
func TestWriteFileAtomicFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tpwatch.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := writeFileAtomic(path, func(w io.Writer) error {
		if _, err := io.WriteString(w, "half a fi"); err != nil {
			return err
		}
		return syscall.ENOSPC
	})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v should wrap ENOSPC and name %s", err, path)
	}
	assertFileIs(t, path, "old\n")
	assertNoTempFiles(t, dir)
}

func TestWriteTextfileGatherErrorKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tpwatch.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	errCollect := errors.New("collector failed")
	reg := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, errCollect })
	if err := WriteTextfile(path, reg); !errors.Is(err, errCollect) {
		t.Errorf("WriteTextfile with a failing gatherer: %v, want %v", err, errCollect)
	}
	assertFileIs(t, path, "old\n")
	assertNoTempFiles(t, dir)
}

func assertFileIs(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q (the old file must be left intact)", path, got, want)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
