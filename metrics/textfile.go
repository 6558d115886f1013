package metrics

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// WriteTextfile writes the metrics of g to path in the text format that
// node_exporter's textfile collector reads (no timestamps: the collector
// rejects them). The file is replaced atomically: written to a temporary
// file in the same directory (named so the collector, which reads *.prom,
// skips it), synced, then renamed over path, so a reader never sees half a
// file and a failure (a full disk) leaves the old file as it was.
func WriteTextfile(path string, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("write textfile %s: gather: %w", path, err)
	}
	return writeFileAtomic(path, func(w io.Writer) error {
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				m.TimestampMs = nil
			}
			if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeFileAtomic replaces path with what write produces, or leaves it alone.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write textfile %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write textfile %s: %w", path, err)
		}
	}()

	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; the textfile collector may run as
	// another user.
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable. Some file systems cannot sync a
	// directory; the file is in place either way, so that is not an error.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
