package capture

import (
	"fmt"
	"io"
)

// Record is one packet as a capture file stores it.
type Record struct {
	// TS is the capture time in Unix nanoseconds.
	TS int64
	// CapLen is the number of bytes captured (len(Data)); WireLen is the
	// packet's length on the wire, never less than CapLen.
	CapLen, WireLen uint32
	// Link says which header Data starts with.
	Link LinkType
	// Interface is the pcapng interface the packet was captured on (0 for
	// classic pcap and for live capture on one interface).
	Interface uint32
	// Data holds the captured bytes. It is a slice of the reader's buffer,
	// valid only until the next call to Next.
	Data []byte
}

// Reader produces the records of a capture, one per call to Next.
//
// Next returns io.EOF at a clean end of the capture; any other error is a
// *ReadError that says which record failed and where. A Reader is not safe
// for concurrent use.
type Reader interface {
	Next(r *Record) error
	Close() error
}

// ReadError reports a capture that could not be read past some record.
// The records before it were returned normally.
type ReadError struct {
	// File is the name of the capture (its path, or the name given to
	// NewReader).
	File string
	// Record is the 1-based number of the packet record that failed.
	Record int
	// Offset is the byte offset, in the decompressed stream, at which the
	// failing record (or pcapng block) starts.
	Offset int64
	Err    error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("%s: record %d at byte %d: %v", e.File, e.Record, e.Offset, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// truncatedError reports a capture that ends inside a record. It wraps
// io.ErrUnexpectedEOF so that errors.Is recognises it.
type truncatedError struct{ have, want int64 }

func errTruncated(have, want int64) error { return &truncatedError{have, want} }

func (e *truncatedError) Error() string {
	return fmt.Sprintf("truncated in the middle of a record (%d of %d bytes)", e.have, e.want)
}

func (e *truncatedError) Unwrap() error { return io.ErrUnexpectedEOF }
