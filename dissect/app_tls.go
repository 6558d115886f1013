package dissect

import "encoding/binary"

// TLS records and hellos (RFC 8446 4.1.2 and 5.1, RFC 6066 3, RFC 7301;
// research notes 2.2).

const (
	tlsRecordHeaderLen    = 5
	tlsHandshakeHeaderLen = 4
	// tlsMaxRecord is the largest record length a peer may send
	// (2^14 plus the expansion TLS 1.2 allows).
	tlsMaxRecord = 1<<14 + 2048

	tlsContentCCS       = 0x14
	tlsContentAlert     = 0x15
	tlsContentHandshake = 0x16
	tlsContentAppData   = 0x17

	tlsClientHello = 1
	tlsServerHello = 2

	extServerName        = 0x0000
	extALPN              = 0x0010
	extSupportedVersions = 0x002b

	// maxSNI is the longest host name a TLSHello keeps (a DNS name has
	// at most 253 characters); maxALPN the bytes of the ALPN list it
	// keeps, in its wire form (a length byte before each name).
	maxSNI  = 255
	maxALPN = 64
)

// ALPNSet flags the application protocols a hello's ALPN extension names
// that matter to tpwatch: gRPC always offers h2, TDS 8.0 (SQL Server's
// strict encryption) tds/8.0.
type ALPNSet uint8

const (
	ALPNH2 ALPNSet = 1 << iota
	ALPNHTTP11
	ALPNTDS8
	// ALPNOther: a name not listed above.
	ALPNOther
)

// HelloParse says how far a hello's extensions were read.
type HelloParse uint8

const (
	HelloNotRead HelloParse = iota
	// HelloComplete: every extension was read.
	HelloComplete
	// HelloCut: the captured bytes ended first (a snap length, or a
	// hello longer than its first segment): what was read is reported,
	// what was not is unknown.
	HelloCut
	// HelloMalformed: a length disagreed with the others; reading
	// stopped there.
	HelloMalformed
)

func (p HelloParse) String() string {
	switch p {
	case HelloComplete:
		return "complete"
	case HelloCut:
		return "cut"
	case HelloMalformed:
		return "malformed"
	}
	return "not_read"
}

// TLSHello is what a ClientHello or ServerHello says that tpwatch reports.
// Its byte fields are copies, bounded, in arrays of its own.
type TLSHello struct {
	// Handshake is 1 for a ClientHello, 2 for a ServerHello, 0 when the
	// payload was another record (an alert, application data).
	Handshake uint8
	// Version is the highest version a ClientHello offers, or the one a
	// ServerHello selects (from supported_versions when present, else
	// the legacy version field): 0x0303 is TLS 1.2, 0x0304 TLS 1.3.
	Version uint16
	sni     [maxSNI]byte
	sniLen  uint8
	// SNICut is set when the server name was longer than maxSNI.
	SNICut bool
	alpn   [maxALPN]byte
	// alpnLen is the length of the ALPN list in alpn, in wire form.
	alpnLen uint8
	// ALPNCut is set when the ALPN list was longer than maxALPN: the
	// names kept are those that fit whole; ALPN still flags them all.
	ALPNCut bool
	// ALPN flags the names the ALPN extension lists.
	ALPN ALPNSet
	// HasALPN is set when the hello carries an ALPN extension at all.
	HasALPN    bool
	Extensions HelloParse
}

func (h *TLSHello) reset() {
	h.Handshake, h.Version, h.sniLen, h.SNICut = 0, 0, 0, false
	h.alpnLen, h.ALPNCut, h.ALPN, h.HasALPN, h.Extensions = 0, false, 0, false, HelloNotRead
}

// SNI returns the server name of a ClientHello (empty without one). The
// slice refers to the TLSHello's own array.
func (h *TLSHello) SNI() []byte { return h.sni[:h.sniLen] }

// NumALPN returns the number of ALPN names kept.
func (h *TLSHello) NumALPN() int {
	n := 0
	for i := 0; i < int(h.alpnLen); i += 1 + int(h.alpn[i]) {
		n++
	}
	return n
}

// ALPNName returns the i-th ALPN name kept, or nil.
func (h *TLSHello) ALPNName(i int) []byte {
	for off := 0; off < int(h.alpnLen); off += 1 + int(h.alpn[off]) {
		if i == 0 {
			return h.alpn[off+1 : off+1+int(h.alpn[off])]
		}
		i--
	}
	return nil
}

// identifyTLS recognises a TLS record: a hello with certainty (and reads
// it), the other record types of a connection caught mid-stream with less.
func identifyTLS(b []byte, _ int, out *Identification) match {
	switch b[0] {
	case tlsContentHandshake, tlsContentAlert, tlsContentCCS, tlsContentAppData:
	default:
		return identifySSLv2Hello(b, out)
	}
	if len(b) < 3 {
		return match{needMore: b[0] == tlsContentHandshake && (len(b) == 1 || b[1] == 3)}
	}
	if b[1] != 3 || b[2] > 4 {
		return match{}
	}
	if len(b) < tlsRecordHeaderLen+1 {
		return match{needMore: true}
	}
	recLen := int(binary.BigEndian.Uint16(b[3:]))
	if recLen == 0 || recLen > tlsMaxRecord {
		return match{}
	}
	if b[0] != tlsContentHandshake {
		// An alert, a change_cipher_spec or application data: TLS, but
		// either end sends them and a record header is only 5 bytes.
		if b[0] == tlsContentCCS && (recLen != 1 || b[5] != 1) {
			return match{}
		}
		return match{app: AppTLS, conf: ConfidenceMedium, sender: SideEither}
	}
	body := b[tlsRecordHeaderLen:min(len(b), tlsRecordHeaderLen+recLen)]
	switch body[0] {
	case tlsClientHello, tlsServerHello:
	default:
		// A later handshake message (a certificate, a finished message
		// that is encrypted): TLS mid-stream.
		return match{app: AppTLS, conf: ConfidenceMedium, sender: SideEither}
	}
	if len(body) < tlsHandshakeHeaderLen+2 {
		return match{needMore: true}
	}
	// 3.0 to 3.4, or a draft of TLS 1.3 (0x7f and the draft number),
	// which the ServerHellos of 2016-2018 carry.
	if !(body[4] == 3 && body[5] <= 4 || body[0] == tlsServerHello && body[4] == 0x7f) {
		return match{}
	}
	hsLen := int(body[1])<<16 | int(body[2])<<8 | int(body[3])
	if hsLen < 2+32+1 {
		return match{}
	}
	h := &out.TLS
	h.Handshake = body[0]
	h.Version = binary.BigEndian.Uint16(body[4:])
	hello := body[tlsHandshakeHeaderLen:]
	cut := len(hello) < hsLen
	if !cut {
		hello = hello[:hsLen]
	}
	readHello(h, hello, cut)
	sender := SideClient
	if h.Handshake == tlsServerHello {
		sender = SideServer
	}
	return match{app: AppTLS, conf: ConfidenceHigh, sender: sender}
}

// readHello reads a hello's body after its version: random, session id,
// cipher suites (one chosen by a ServerHello), compression methods (one
// chosen), then the extensions. cut says the body holds less than the
// handshake length.
func readHello(h *TLSHello, b []byte, cut bool) {
	stop := func(p HelloParse) {
		if cut {
			p = HelloCut
		}
		h.Extensions = p
	}
	off := 2 + 32
	if off >= len(b) {
		stop(HelloMalformed)
		return
	}
	off += 1 + int(b[off]) // session id
	client := h.Handshake == tlsClientHello
	if client {
		if off+2 > len(b) {
			stop(HelloMalformed)
			return
		}
		off += 2 + int(binary.BigEndian.Uint16(b[off:])) // cipher suites
		if off+1 > len(b) {
			stop(HelloMalformed)
			return
		}
		off += 1 + int(b[off]) // compression methods
	} else {
		off += 2 + 1
	}
	if off == len(b) && !cut {
		h.Extensions = HelloComplete // a hello without extensions (SSL 3.0 style)
		return
	}
	if off+2 > len(b) {
		stop(HelloMalformed)
		return
	}
	extEnd := off + 2 + int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if extEnd > len(b) {
		if !cut {
			h.Extensions = HelloMalformed
			return
		}
		extEnd = len(b)
	} else if extEnd != len(b) && !cut {
		h.Extensions = HelloMalformed
		return
	}
	for off+4 <= extEnd {
		typ := binary.BigEndian.Uint16(b[off:])
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		off += 4
		if off+n > extEnd {
			stop(HelloMalformed)
			return
		}
		data := b[off : off+n]
		off += n
		ok := true
		switch typ {
		case extServerName:
			if client {
				ok = h.readServerName(data)
			}
		case extALPN:
			ok = h.readALPN(data)
		case extSupportedVersions:
			ok = h.readSupportedVersions(data, client)
		}
		if !ok {
			h.Extensions = HelloMalformed
			return
		}
	}
	if off != extEnd {
		stop(HelloMalformed)
		return
	}
	if cut {
		h.Extensions = HelloCut
		return
	}
	h.Extensions = HelloComplete
}

// readServerName keeps the first host_name of a server_name extension: a
// list length, then entries of a type byte (0 host_name) and a
// length-prefixed name.
func (h *TLSHello) readServerName(b []byte) bool {
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return false
	}
	for off := 2; off < len(b); {
		if off+3 > len(b) {
			return false
		}
		typ, n := b[off], int(binary.BigEndian.Uint16(b[off+1:]))
		off += 3
		if off+n > len(b) {
			return false
		}
		if typ == 0 && h.sniLen == 0 && !h.SNICut {
			h.sniLen = uint8(copy(h.sni[:], b[off:off+n]))
			h.SNICut = n > maxSNI
		}
		off += n
	}
	return true
}

// readALPN reads the protocol_name_list: a list length, then names each
// with a length byte.
func (h *TLSHello) readALPN(b []byte) bool {
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return false
	}
	h.HasALPN = true
	for off := 2; off < len(b); {
		n := int(b[off])
		if n == 0 || off+1+n > len(b) {
			return false
		}
		name := b[off+1 : off+1+n]
		switch string(name) {
		case "h2":
			h.ALPN |= ALPNH2
		case "http/1.1":
			h.ALPN |= ALPNHTTP11
		case "tds/8.0":
			h.ALPN |= ALPNTDS8
		default:
			h.ALPN |= ALPNOther
		}
		if int(h.alpnLen)+1+n <= maxALPN && !h.ALPNCut {
			h.alpnLen += uint8(copy(h.alpn[h.alpnLen:], b[off:off+1+n]))
		} else {
			h.ALPNCut = true
		}
		off += 1 + n
	}
	return true
}

// readSupportedVersions reads the versions a ClientHello offers (a length
// byte and a list) or the one a ServerHello selects, skipping GREASE
// values (RFC 8701: 0x?a?a) and keeping the highest.
func (h *TLSHello) readSupportedVersions(b []byte, client bool) bool {
	if !client {
		if len(b) != 2 {
			return false
		}
		h.Version = binary.BigEndian.Uint16(b)
		return true
	}
	if len(b) < 1 || int(b[0]) != len(b)-1 || b[0]%2 != 0 {
		return false
	}
	var best uint16
	for off := 1; off+2 <= len(b); off += 2 {
		v := binary.BigEndian.Uint16(b[off:])
		if v&0x0f0f == 0x0a0a {
			continue
		}
		best = max(best, v)
	}
	if best != 0 {
		h.Version = best
	}
	return true
}

// identifySSLv2Hello recognises a ClientHello in the SSL 2.0 record format,
// which old clients send to offer SSL 3.0 or TLS 1.x too (RFC 5246
// appendix E.2): a two-byte length with the high bit set, message type 1,
// and the highest version offered (0x0002, or 0x0300-0x0304). It carries
// no extension.
func identifySSLv2Hello(b []byte, out *Identification) match {
	if b[0]&0x80 == 0 {
		return match{}
	}
	if len(b) < 5 {
		return match{needMore: len(b) < 3 || b[2] == tlsClientHello}
	}
	n := int(b[0]&0x7f)<<8 | int(b[1])
	v := binary.BigEndian.Uint16(b[3:])
	if b[2] != tlsClientHello || n < 3+6 || !(v == 0x0002 || v >= 0x0300 && v <= 0x0304) {
		return match{}
	}
	out.TLS.Handshake = tlsClientHello
	out.TLS.Version = v
	out.TLS.Extensions = HelloComplete
	return match{app: AppTLS, conf: ConfidenceHigh, sender: SideClient}
}
