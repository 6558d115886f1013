package dissect

import (
	"bytes"
	"encoding/binary"
)

// HTTP/1.x (RFC 9112) and cleartext HTTP/2 (RFC 9113), with gRPC told by
// its content-type (research notes 2.2).

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

const (
	h2FrameHeaderLen = 9
	h2FrameHeaders   = 0x1
	h2FrameSettings  = 0x4
	h2FlagAck        = 0x1
	h2FlagPadded     = 0x8
	h2FlagPriority   = 0x20
	// h2MaxFrames bounds the frames walked after the preface.
	h2MaxFrames = 8
	// h2MinPrefix is how much of the preface makes a confident match
	// when the rest is in the next segment ("PRI * HTT").
	h2MinPrefix = 9
	// h2MaxSettings bounds a SETTINGS frame that starts a server's
	// answer: there are seven settings defined, six bytes each.
	h2MaxSettings = 6 * 16
)

// grpcContentType is the content-type of gRPC, as HPACK sends its value:
// raw, or Huffman-coded (RFC 7541 appendix B). "application/grpc" codes
// to exactly 11 bytes, which "application/grpc+proto" also starts with.
var (
	grpcContentType        = []byte("application/grpc")
	grpcContentTypeHuffman = []byte{0x1d, 0x75, 0xd0, 0x62, 0x0d, 0x26, 0x3d, 0x4c, 0x4d, 0x65, 0x64}
)

// identifyHTTP2 recognises the client preface (perhaps cut, when at least
// h2MinPrefix bytes of it are there), or a SETTINGS frame at the start of
// a direction: a server's first frame, or the frames of a connection
// caught mid-stream. It then walks the frames that follow for a HEADERS
// frame that says gRPC, and that says who sent it.
func identifyHTTP2(b []byte, _ int, _ *Identification) match {
	if b[0] == 'P' {
		if isPrefixOf(b, h2Preface) {
			if len(b) >= h2MinPrefix {
				return match{app: AppHTTP2, conf: ConfidenceMedium, sender: SideClient}
			}
			return match{needMore: true}
		}
		if !hasPrefix(b, h2Preface) {
			return match{}
		}
		app := AppHTTP2
		if grpc, _ := h2Headers(b[len(h2Preface):]); grpc {
			app = AppGRPC
		}
		return match{app: app, conf: ConfidenceHigh, sender: SideClient}
	}
	// SETTINGS on stream 0 (RFC 9113 6.5): a length that is a multiple
	// of six, no flag but ACK (and then no payload).
	if len(b) < h2FrameHeaderLen {
		return match{}
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	if b[3] != h2FrameSettings || binary.BigEndian.Uint32(b[5:])&0x7fffffff != 0 || n%6 != 0 || n > h2MaxSettings {
		return match{}
	}
	if b[4] != 0 && !(b[4] == h2FlagAck && n == 0) {
		return match{}
	}
	// A server speaks first with SETTINGS, but in a connection caught
	// mid-stream either end may send one: only a HEADERS frame's
	// pseudo-headers tell.
	grpc, sender := h2Headers(b)
	app := AppHTTP2
	if grpc {
		app = AppGRPC
	}
	return match{app: app, conf: ConfidenceMedium, sender: sender}
}

// h2Headers walks the first frames of b and reports whether a HEADERS
// frame carries the gRPC content-type, and who sent the first HEADERS
// frame by its first pseudo-header.
func h2Headers(b []byte) (grpc bool, sender Side) {
	for range h2MaxFrames {
		if len(b) < h2FrameHeaderLen {
			return grpc, sender
		}
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		typ, flags := b[3], b[4]
		payload := b[h2FrameHeaderLen:]
		if n < len(payload) {
			payload = payload[:n]
		}
		if typ == h2FrameHeaders {
			block := payload
			if flags&h2FlagPadded != 0 && len(block) > 0 {
				block = block[1:]
			}
			if flags&h2FlagPriority != 0 {
				block = block[min(5, len(block)):]
			}
			if sender == SideEither {
				sender = hpackSender(block)
			}
			if bytes.Contains(block, grpcContentTypeHuffman) || bytes.Contains(block, grpcContentType) {
				return true, sender
			}
		}
		if n > len(b)-h2FrameHeaderLen {
			return grpc, sender
		}
		b = b[h2FrameHeaderLen+n:]
	}
	return grpc, sender
}

// hpackSender says who sent a header block by its first field (RFC 7541
// 6, appendix A): the request pseudo-headers :authority, :method, :path
// and :scheme (static indices 1-7) come from a client, :status (8-14) from
// a server, whether the field is indexed or a literal with an indexed or
// raw name. A dynamic table size update may come first.
func hpackSender(b []byte) Side {
	if len(b) > 0 && b[0]&0xe0 == 0x20 {
		b = b[1:] // a table size update (one byte when the size is small)
	}
	if len(b) == 0 {
		return SideEither
	}
	var index int
	switch c := b[0]; {
	case c&0x80 != 0:
		index = int(c & 0x7f)
	case c&0xc0 == 0x40:
		index = int(c & 0x3f)
	case c&0xe0 == 0:
		index = int(c & 0x0f)
	}
	switch {
	case index >= 1 && index <= 7:
		return SideClient
	case index >= 8 && index <= 14:
		return SideServer
	case index != 0 || b[0]&0x80 != 0 || len(b) < 2 || b[1]&0x80 != 0:
		return SideEither
	}
	// A literal with a raw (not Huffman-coded) new name.
	name := b[2:min(len(b), 2+int(b[1]&0x7f))]
	switch string(name) {
	case ":status":
		return SideServer
	case ":method", ":path", ":scheme", ":authority":
		return SideClient
	}
	return SideEither
}

// httpMethods are the request methods recognised: RFC 9110's, WebDAV's,
// and RPC over HTTP's (Outlook Anywhere, RD Gateway). A method is
// followed by a space.
var httpMethods = [...]string{
	"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
	"PROPFIND ", "PROPPATCH ", "MKCOL ", "COPY ", "MOVE ", "LOCK ", "UNLOCK ", "SEARCH ", "REPORT ",
	"RPC_IN_DATA ", "RPC_OUT_DATA ",
}

// httpMaxLine bounds the request or status line searched for its end.
const httpMaxLine = 2048

// identifyHTTP recognises a request line (method, target, HTTP/1.x) or a
// status line (HTTP/1.x, three digits).
func identifyHTTP(b []byte, _ int, _ *Identification) match {
	if b[0] < 'A' || b[0] > 'Z' {
		return match{}
	}
	if b[0] == 'H' && (hasPrefix(b, "HTTP/") || isPrefixOf(b, "HTTP/1.1 ")) {
		if len(b) < len("HTTP/1.1 200") {
			return match{needMore: true}
		}
		if b[5] == '1' && b[6] == '.' && b[7] >= '0' && b[7] <= '9' && b[8] == ' ' && isDigits(b[9:12]) {
			return match{app: AppHTTP, conf: ConfidenceHigh, sender: SideServer}
		}
		return match{}
	}
	needMore := false
	for _, m := range httpMethods {
		if m[0] != b[0] {
			continue
		}
		if isPrefixOf(b, m) {
			needMore = true
			continue
		}
		if !hasPrefix(b, m) {
			continue
		}
		line := b[len(m):]
		if len(line) > httpMaxLine {
			line = line[:httpMaxLine]
		}
		end := bytes.IndexByte(line, '\n')
		if end < 0 {
			// The line goes on past what was captured.
			return match{app: AppHTTP, conf: ConfidenceMedium, sender: SideClient}
		}
		line = line[:end]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		sp := bytes.LastIndexByte(line, ' ')
		if sp > 0 && len(line)-sp-1 == len("HTTP/1.1") && hasPrefix(line[sp+1:], "HTTP/1.") {
			return match{app: AppHTTP, conf: ConfidenceHigh, sender: SideClient}
		}
		return match{}
	}
	return match{needMore: needMore}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
