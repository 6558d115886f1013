// Package logfile is a log file that rotates itself by size: where no
// journal or syslog collects a daemon's standard error (a Windows
// service), tpwatch writes its log to a file that never grows past about
// twice MaxBytes: the current file and one older one beside it (NAME.1).
package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// DefaultMaxBytes is the size at which the file rotates when none is
// given: 10 MiB, some days of a busy site's blocked and unexpected flows.
const DefaultMaxBytes = 10 << 20

// File is an io.Writer appending to a log file. Each Write is one log
// event (zerolog writes an event at a time) and is never split across two
// files. It is safe for concurrent use.
type File struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (creating it and its directory if needed) the log file at
// path for appending; maxBytes <= 0 means DefaultMaxBytes.
func Open(path string, maxBytes int64) (*File, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	l := &File{path: path, max: maxBytes}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log file: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Write appends p, first moving the file to NAME.1 (replacing the older
// one) when p would take it past the limit.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, fmt.Errorf("log file %s: closed", l.path)
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("log file: %w", err)
	}
	return n, nil
}

// rotate moves the current file aside. Windows cannot rename an open file
// nor rename over an existing one, hence the close and the remove first.
func (l *File) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	l.f = nil
	old := l.path + ".1"
	if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("log file: rotate: %w", err)
	}
	if err := os.Rename(l.path, old); err != nil {
		return fmt.Errorf("log file: rotate: %w", err)
	}
	return l.open()
}

// Close closes the file; later writes fail.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
