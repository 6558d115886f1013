package pcaps

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// Format is a capture file format.
type Format uint8

const (
	FormatInvalid Format = iota
	PcapMicro            // classic pcap, microsecond timestamps, little-endian
	PcapNano             // classic pcap, nanosecond timestamps, little-endian
	PcapNG               // pcapng, one section, one interface per Link
)

// snapLen is the snapshot length the generated files declare.
const snapLen = 262144

// application is written in pcapng section headers instead of gopacket's
// default, which names the machine's OS and architecture: the files must
// be the same wherever they are generated.
const application = "tpwatch pcaps/cmd/gencaps"

// writeCapture writes c's frames, in time order, in format f.
func writeCapture(w io.Writer, f Format, c *Capture) error {
	if c.err != nil {
		return c.err
	}
	frames := c.sorted()
	switch f {
	case PcapMicro, PcapNano:
		if len(c.links) != 1 {
			return fmt.Errorf("classic pcap holds one interface, the capture has %d", len(c.links))
		}
		if c.links[0].Nanos != (f == PcapNano) {
			return fmt.Errorf("classic pcap: nanosecond interface %t in format %d", c.links[0].Nanos, f)
		}
		pw := pcapgo.NewWriter(w)
		if f == PcapNano {
			pw = pcapgo.NewWriterNanos(w)
		}
		if err := pw.WriteFileHeader(snapLen, c.links[0].Type); err != nil {
			return fmt.Errorf("write pcap header: %w", err)
		}
		for _, fr := range frames {
			if err := pw.WritePacket(captureInfo(fr), fr.data); err != nil {
				return fmt.Errorf("write packet at %v: %w", fr.at, err)
			}
		}
		return nil
	case PcapNG:
		for _, l := range c.links {
			if !l.Nanos {
				// gopacket's NgWriter writes every interface with
				// nanosecond timestamps; a microsecond one needs ours.
				return writeNgMixed(w, c.links, frames)
			}
		}
		return writeNg(w, c.links, frames)
	}
	return fmt.Errorf("capture format %d unknown", f)
}

func captureInfo(fr frame) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{
		Timestamp: Epoch.Add(fr.at), CaptureLength: len(fr.data), Length: len(fr.data), InterfaceIndex: fr.link,
	}
}

// writeNg writes a pcapng file with gopacket's NgWriter: every interface
// with nanosecond timestamps.
func writeNg(w io.Writer, links []Link, frames []frame) error {
	intf := func(l Link) pcapgo.NgInterface {
		return pcapgo.NgInterface{Name: l.Name, LinkType: l.Type, SnapLength: snapLen}
	}
	nw, err := pcapgo.NewNgWriterInterface(w, intf(links[0]), pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: application}})
	if err != nil {
		return fmt.Errorf("write pcapng header: %w", err)
	}
	for _, l := range links[1:] {
		if _, err := nw.AddInterface(intf(l)); err != nil {
			return fmt.Errorf("write pcapng interface %s: %w", l.Name, err)
		}
	}
	for _, fr := range frames {
		if err := nw.WritePacket(captureInfo(fr), fr.data); err != nil {
			return fmt.Errorf("write packet at %v: %w", fr.at, err)
		}
	}
	if err := nw.Flush(); err != nil {
		return fmt.Errorf("flush pcapng: %w", err)
	}
	return nil
}

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	ngSectionHeader   = 0x0A0D0D0A
	ngInterface       = 0x00000001
	ngEnhancedPacket  = 0x00000006
	ngByteOrderMagic  = 0x1A2B3C4D
	ngOptEnd          = 0
	ngOptUserAppl     = 4
	ngOptIfName       = 2
	ngOptIfTsresol    = 9
	ngTsresolNanosecs = 9
)

// writeNgMixed writes a little-endian pcapng file whose interfaces may
// differ in timestamp resolution: an interface without Nanos has no
// if_tsresol option, so readers must apply the microsecond default.
func writeNgMixed(w io.Writer, links []Link, frames []frame) error {
	var out bytes.Buffer
	le := binary.LittleEndian

	var opts bytes.Buffer
	ngOption(&opts, ngOptUserAppl, []byte(application))
	ngOption(&opts, ngOptEnd, nil)
	body := le.AppendUint32(nil, ngByteOrderMagic)
	body = le.AppendUint16(body, 1) // major version
	body = le.AppendUint16(body, 0) // minor version
	body = le.AppendUint64(body, ^uint64(0))
	ngBlock(&out, ngSectionHeader, append(body, opts.Bytes()...))

	for _, l := range links {
		opts.Reset()
		ngOption(&opts, ngOptIfName, []byte(l.Name))
		if l.Nanos {
			ngOption(&opts, ngOptIfTsresol, []byte{ngTsresolNanosecs})
		}
		ngOption(&opts, ngOptEnd, nil)
		body := le.AppendUint16(nil, uint16(l.Type))
		body = le.AppendUint16(body, 0)
		body = le.AppendUint32(body, snapLen)
		ngBlock(&out, ngInterface, append(body, opts.Bytes()...))
	}

	for _, fr := range frames {
		ts := uint64(Epoch.Add(fr.at).UnixNano())
		if !links[fr.link].Nanos {
			ts /= 1000
		}
		body := le.AppendUint32(nil, uint32(fr.link))
		body = le.AppendUint32(body, uint32(ts>>32))
		body = le.AppendUint32(body, uint32(ts))
		body = le.AppendUint32(body, uint32(len(fr.data)))
		body = le.AppendUint32(body, uint32(len(fr.data)))
		body = append(body, fr.data...)
		body = append(body, make([]byte, pad4(len(fr.data)))...)
		ngBlock(&out, ngEnhancedPacket, body)
	}
	if _, err := w.Write(out.Bytes()); err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	return nil
}

func pad4(n int) int { return (4 - n%4) % 4 }

// ngBlock writes a block: type, total length, body, total length again.
func ngBlock(out *bytes.Buffer, blockType uint32, body []byte) {
	total := uint32(12 + len(body))
	le := binary.LittleEndian
	out.Write(le.AppendUint32(le.AppendUint32(nil, blockType), total))
	out.Write(body)
	out.Write(le.AppendUint32(nil, total))
}

// ngOption writes one option, padded to 32 bits.
func ngOption(out *bytes.Buffer, code uint16, value []byte) {
	le := binary.LittleEndian
	out.Write(le.AppendUint16(le.AppendUint16(nil, code), uint16(len(value))))
	out.Write(value)
	out.Write(make([]byte, pad4(len(value))))
}
