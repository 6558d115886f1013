package capture

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// OpenFile opens a capture file for reading: classic pcap or pcapng,
// either of them optionally gzip-compressed. The Reader closes the file.
func OpenFile(path string) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory, not a capture file", path)
	}
	r, err := newReader(f, path, f, defaultBufferSize)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// NewReader reads a capture from a stream; name identifies it in errors.
// Closing the Reader does not close r.
func NewReader(r io.Reader, name string) (Reader, error) {
	return newReader(r, name, nil, defaultBufferSize)
}

func newReader(r io.Reader, name string, closer io.Closer, bufSize int) (Reader, error) {
	s := newStream(r, bufSize)
	magic, err := s.peek(4)
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(s)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		s = newStream(zr, bufSize)
		closer = multiCloser{zr, closer}
		magic, err = s.peek(4)
		if len(magic) < 4 {
			return nil, fmt.Errorf("%s: gzip content: %w", name, readFailure(err, len(magic), 4))
		}
	}
	if len(magic) < 4 {
		if err == io.EOF && len(magic) == 0 {
			return nil, fmt.Errorf("%s: empty file, not a capture", name)
		}
		return nil, fmt.Errorf("%s: capture header: %w", name, readFailure(err, len(magic), 4))
	}
	switch {
	case magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a:
		return newPcapngReader(s, name, closer), nil
	case isPcapMagic(magic):
		return newPcapReader(s, name, closer)
	}
	return nil, fmt.Errorf("%s: not a pcap, pcapng or gzip file (starts with %x)", name, magic)
}

func isPcapMagic(b []byte) bool {
	// The magic, read in either byte order, is a1b2 followed by c3d4, 3c4d
	// or cd34.
	le := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	be := uint32(b[3]) | uint32(b[2])<<8 | uint32(b[1])<<16 | uint32(b[0])<<24
	for _, m := range [...]uint32{pcapMagicMicro, pcapMagicNano, pcapMagicModified} {
		if le == m || be == m {
			return true
		}
	}
	return false
}

// multiCloser closes a decompressor and then the file under it.
type multiCloser struct{ first, second io.Closer }

func (m multiCloser) Close() error {
	err := m.first.Close()
	if err2 := closeIfAny(m.second); err == nil {
		err = err2
	}
	return err
}
