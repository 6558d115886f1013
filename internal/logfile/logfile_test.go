package logfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotatesBySizeKeepingOneOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "tpwatch.log")
	f, err := Open(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes
	for i := 0; i < 7; i++ {
		if n, err := f.Write(line); err != nil || n != len(line) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// 7 lines of 40 bytes with a 100-byte limit: 2 per file, rotated
	// three times; the current file holds the 7th, NAME.1 the 5th and 6th.
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cur, line) || !bytes.Equal(old, append(append([]byte{}, line...), line...)) {
		t.Errorf("current %d bytes, old %d bytes; want 40 and 80", len(cur), len(old))
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Error("a second old file was kept")
	}
	if _, err := f.Write(line); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestAppendsToAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tpwatch.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("after\n"))
	f.Close()
	got, _ := os.ReadFile(path)
	if string(got) != "before\nafter\n" {
		t.Errorf("file holds %q", got)
	}
}

func TestOneEventLargerThanTheLimitIsWrittenWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tpwatch.log")
	f, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("y", 25) + "\n")
	f.Write(big)
	f.Close()
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, big) {
		t.Errorf("file holds %q", got)
	}
}
