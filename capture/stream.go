package capture

import "io"

const (
	// defaultBufferSize is the reader buffer a capture starts with: one
	// read system call serves about 1,600 records of 160 bytes, and the
	// buffer stays in the L2 cache between the kernel's copy and the
	// decoder's read (1 MiB did not, and cost 15% more wall time on the
	// benchmark capture: docs/performance.md).
	defaultBufferSize = 1 << 18
	// maxReadAttempts bounds reads that return no data and no error.
	maxReadAttempts = 100
)

// stream is the buffered reader every capture reader sits on. Unlike
// bufio.Reader it hands out views of its buffer as large as one record,
// grows the buffer only when a record needs it, and never grows past twice
// the data actually read, so a length field that lies costs no memory.
type stream struct {
	r          io.Reader
	buf        []byte
	start, end int   // buffered bytes are buf[start:end]
	pos        int64 // stream offset of buf[start]
	err        error // sticky error from r, io.EOF included
}

func newStream(r io.Reader, size int) *stream {
	return &stream{r: r, buf: make([]byte, size)}
}

// peek returns the next n bytes without consuming them. When the stream
// ends (or fails) first, it returns the bytes there are and the error.
// The result stays valid until the next call to peek or discard.
func (s *stream) peek(n int) ([]byte, error) {
	if s.end-s.start >= n {
		return s.buf[s.start : s.start+n], nil
	}
	return s.fill(n)
}

func (s *stream) fill(n int) ([]byte, error) {
	idle := 0
	for s.end-s.start < n {
		if s.err != nil {
			return s.buf[s.start:s.end], s.err
		}
		if s.end == len(s.buf) {
			s.makeRoom(n)
		}
		got, err := s.r.Read(s.buf[s.end:])
		s.end += got
		if err != nil {
			s.err = err
		} else if got == 0 {
			idle++
			if idle >= maxReadAttempts {
				s.err = io.ErrNoProgress
			}
		}
	}
	return s.buf[s.start : s.start+n], nil
}

// makeRoom frees space at the end of a full buffer: it moves the buffered
// bytes to the front or, when they fill the whole buffer, doubles it (but
// not beyond n, the size of the record being assembled).
func (s *stream) makeRoom(n int) {
	if s.start > 0 {
		copy(s.buf, s.buf[s.start:s.end])
		s.end -= s.start
		s.start = 0
		return
	}
	size := 2 * len(s.buf)
	if size > n {
		size = n
	}
	if size < 16 {
		size = 16
	}
	grown := make([]byte, size)
	copy(grown, s.buf[:s.end])
	s.buf = grown
}

// consume drops n bytes that a previous peek returned.
func (s *stream) consume(n int) {
	s.start += n
	s.pos += int64(n)
}

// discard skips n bytes without keeping them, reading through the buffer.
// It returns how many bytes it skipped; fewer than n means the stream ended
// or failed, and the error says which.
func (s *stream) discard(n int64) (int64, error) {
	var done int64
	for done < n {
		if s.end == s.start {
			if s.err != nil {
				return done, s.err
			}
			s.start, s.end = 0, 0
			if _, err := s.fill(1); err != nil && s.end == s.start {
				return done, err
			}
		}
		step := int64(s.end - s.start)
		if step > n-done {
			step = n - done
		}
		s.consume(int(step))
		done += step
	}
	return done, nil
}

// Read lets a decompressor sit on a stream that has already been peeked at.
func (s *stream) Read(p []byte) (int, error) {
	if s.end == s.start {
		if s.err != nil {
			return 0, s.err
		}
		return s.r.Read(p)
	}
	n := copy(p, s.buf[s.start:s.end])
	s.consume(n)
	return n, nil
}
