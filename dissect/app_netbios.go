package dissect

import "encoding/binary"

// SMB over TCP 445 and the NetBIOS services of ports 137-139 (RFC 1002,
// MS-SMB2 2.2.1, MS-CIFS 2.2.3.1; research notes 2.2).

const (
	// nbNameLen is an encoded NetBIOS name: a length byte 0x20 and 32
	// characters 'A' to 'P' (two per byte of the 16-byte name).
	nbNameLen = 1 + 32

	nbssMessage          = 0x00
	nbssSessionRequest   = 0x81
	nbssPositiveResponse = 0x82
	nbssNegativeResponse = 0x83
	nbssRetarget         = 0x84
	nbssKeepalive        = 0x85
)

// isNetBIOSName reports whether b starts with an encoded NetBIOS name.
func isNetBIOSName(b []byte) bool {
	if len(b) < nbNameLen || b[0] != 0x20 {
		return false
	}
	for _, c := range b[1:nbNameLen] {
		if c < 'A' || c > 'P' {
			return false
		}
	}
	return true
}

// identifySMB recognises an SMB message in its four-byte framing (a zero
// byte and a 24-bit length on 445, the NetBIOS session message on 139):
// SMB2/3 (fe 'SMB'), SMB1 (ff 'SMB'), the SMB3 transform (fd) and
// compression (fc) headers. The header's reply flag says who sent it.
func identifySMB(b []byte, _ int, _ *Identification) match {
	if b[0] != nbssMessage {
		return match{}
	}
	if len(b) < 8 {
		if len(b) > 4 && (b[4] >= 0xfc) && isPrefixOf(b[5:], "SMB") {
			return match{needMore: true}
		}
		return match{}
	}
	if string(b[5:8]) != "SMB" {
		return match{}
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	var minLen int
	switch b[4] {
	case 0xfe:
		minLen = 64
	case 0xff:
		minLen = 32
	case 0xfd:
		minLen = 52
	case 0xfc:
		minLen = 16
	default:
		return match{}
	}
	if n < minLen {
		return match{}
	}
	sender := SideEither
	switch {
	case b[4] == 0xfe && len(b) >= 4+20:
		// SMB2 Flags (u32 at 16): SMB2_FLAGS_SERVER_TO_REDIR.
		sender = SideClient
		if binary.LittleEndian.Uint32(b[4+16:])&1 != 0 {
			sender = SideServer
		}
	case b[4] == 0xff && len(b) >= 4+10:
		// SMB1 Flags (u8 at 9): SMB_FLAGS_REPLY.
		sender = SideClient
		if b[4+9]&0x80 != 0 {
			sender = SideServer
		}
	}
	return match{app: AppSMB, conf: ConfidenceHigh, sender: sender}
}

// identifyNetBIOSSession recognises the session service's own messages.
// Only the session request carries enough to be sure (two encoded names);
// the answers and the keepalive are four or five fixed bytes, told apart
// only by their exact length.
func identifyNetBIOSSession(b []byte, payloadLen int, _ *Identification) match {
	switch b[0] {
	case nbssSessionRequest:
		if len(b) < 4 {
			return match{needMore: true}
		}
		n := int(b[1]&1)<<16 | int(binary.BigEndian.Uint16(b[2:]))
		if b[1]&0xfe != 0 || n < 2*nbNameLen+2 || n+4 != payloadLen {
			return match{}
		}
		if len(b) < 4+nbNameLen {
			return match{app: AppNetBIOSSession, conf: ConfidenceMedium, sender: SideClient}
		}
		if !isNetBIOSName(b[4:]) {
			return match{}
		}
		return match{app: AppNetBIOSSession, conf: ConfidenceHigh, sender: SideClient}
	case nbssPositiveResponse:
		if payloadLen == 4 && len(b) == 4 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
			return match{app: AppNetBIOSSession, conf: ConfidenceMedium, sender: SideServer}
		}
	case nbssNegativeResponse:
		if payloadLen == 5 && len(b) == 5 && b[1] == 0 && b[2] == 0 && b[3] == 1 && b[4] >= 0x80 && b[4] <= 0x8f {
			return match{app: AppNetBIOSSession, conf: ConfidenceMedium, sender: SideServer}
		}
	case nbssRetarget:
		if payloadLen == 10 && len(b) >= 4 && b[1] == 0 && b[2] == 0 && b[3] == 6 {
			return match{app: AppNetBIOSSession, conf: ConfidenceLow, sender: SideServer}
		}
	case nbssKeepalive:
		if payloadLen == 4 && len(b) == 4 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
			return match{app: AppNetBIOSSession, conf: ConfidenceLow, sender: SideEither}
		}
	}
	return match{}
}

// NetBIOS name service opcodes (RFC 1002 4.2.1.1): query, registration,
// release, WACK, refresh (8, and 9 as some stacks send it) and multi-homed
// registration (15).
func nbnsOpcode(op uint16) bool {
	switch op {
	case 0, 5, 6, 7, 8, 9, 15:
		return true
	}
	return false
}

// identifyNBNS recognises a NetBIOS name service packet: a DNS-like
// header with at most one record of each kind, then an encoded NetBIOS
// name (without scope) of type NB (0x20) or NBSTAT (0x21), class IN.
func identifyNBNS(b []byte, payloadLen int, _ *Identification) match {
	const hdr = 12
	if len(b) < hdr+nbNameLen+1+4 {
		// Cut by a snap length: the header and the start of the name
		// must do.
		if payloadLen < hdr+nbNameLen+1+4 || len(b) < hdr+1+8 || !nbnsHeader(b) || !isNetBIOSNamePrefix(b[hdr:]) {
			return match{}
		}
		return match{app: AppNBNS, conf: ConfidenceMedium, sender: nbnsSender(b)}
	}
	if !nbnsHeader(b) || !isNetBIOSName(b[hdr:]) || b[hdr+nbNameLen] != 0 {
		return match{}
	}
	typ := binary.BigEndian.Uint16(b[hdr+nbNameLen+1:])
	class := binary.BigEndian.Uint16(b[hdr+nbNameLen+3:])
	if typ != 0x20 && typ != 0x21 || class != 1 {
		return match{}
	}
	return match{app: AppNBNS, conf: ConfidenceHigh, sender: nbnsSender(b)}
}

// nbnsHeader checks the DNS-like header of a NetBIOS name service packet:
// a known opcode and at most one record of each kind.
func nbnsHeader(b []byte) bool {
	flags := binary.BigEndian.Uint16(b[2:])
	qd, an := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	ns, ar := binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	return nbnsOpcode(flags>>11&0xf) && qd <= 1 && an <= 1 && ns <= 1 && ar <= 1 && qd+an > 0
}

// nbnsSender: a response (the R bit) comes from the server.
func nbnsSender(b []byte) Side {
	if b[2]&0x80 != 0 {
		return SideServer
	}
	return SideClient
}

// isNetBIOSNamePrefix is isNetBIOSName for a name of which only the start
// was captured.
func isNetBIOSNamePrefix(b []byte) bool {
	if len(b) >= nbNameLen {
		return isNetBIOSName(b)
	}
	if len(b) == 0 || b[0] != 0x20 {
		return false
	}
	for _, c := range b[1:] {
		if c < 'A' || c > 'P' {
			return false
		}
	}
	return true
}

// identifyNBDGM recognises a NetBIOS datagram (RFC 1002 4.4): a message
// type 0x10-0x16, flags with their reserved bits clear, and the encoded
// source name where the type puts it (after the 14-byte header of a
// datagram, after the 10-byte header of a query).
func identifyNBDGM(b []byte, payloadLen int, _ *Identification) match {
	if len(b) < 2 || b[0] < 0x10 || b[0] > 0x16 || b[1]&0xf0 != 0 {
		return match{}
	}
	switch b[0] {
	case 0x10, 0x11, 0x12: // direct unique, direct group, broadcast
		if len(b) < 14+nbNameLen || !isNetBIOSName(b[14:]) {
			return match{}
		}
		return match{app: AppNBDGM, conf: ConfidenceHigh, sender: SideClient}
	case 0x13: // error
		if payloadLen != 11 {
			return match{}
		}
		return match{app: AppNBDGM, conf: ConfidenceLow, sender: SideEither}
	default: // query request, positive and negative query responses
		if len(b) < 10+nbNameLen || !isNetBIOSName(b[10:]) {
			return match{}
		}
		return match{app: AppNBDGM, conf: ConfidenceMedium, sender: SideEither}
	}
}
