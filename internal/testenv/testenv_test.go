package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadManifest(t *testing.T) {
	dir := t.TempDir()
	tsv := "path\tpackets\ttshark_ok\na.pcap\t8\tyes\nb.pcap\tNA\n"
	if err := os.WriteFile(filepath.Join(dir, "MANIFEST.tsv"), []byte(tsv), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["path"] != "a.pcap" || rows[0]["packets"] != "8" || rows[0]["tshark_ok"] != "yes" ||
		rows[1]["packets"] != "NA" || rows[1]["tshark_ok"] != "" {
		t.Errorf("rows %v", rows)
	}
	if _, err := ReadManifest(t.TempDir()); err == nil {
		t.Error("no error for a missing MANIFEST.tsv")
	}
}

func TestSharedDirIsBesideTheRepository(t *testing.T) {
	dir, err := SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	if want := filepath.Join(filepath.Dir(root), "shared"); dir != want {
		t.Errorf("SharedDir() = %s, want %s", dir, want)
	}
}
