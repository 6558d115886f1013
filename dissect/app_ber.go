package dissect

import "encoding/binary"

// LDAP (RFC 4511) and Kerberos (RFC 4120), both BER-encoded ASN.1
// (research notes 2.2).

// berStatus is the outcome of reading a BER element header.
type berStatus uint8

const (
	berOK  berStatus = iota
	berCut           // the bytes end inside the header
	berBad           // not a definite length of at most four bytes
)

// berLength reads a definite BER length at the start of b: the length,
// and the number of bytes it took.
func berLength(b []byte) (n, used int, st berStatus) {
	if len(b) == 0 {
		return 0, 0, berCut
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, berOK
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 4 {
		return 0, 0, berBad // indefinite (not in DER or LDAP) or beyond 4 GB
	}
	if len(b) < 1+k {
		return 0, 0, berCut
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, berOK
}

// ldapOpSide says who sends an LDAP protocolOp, by its APPLICATION tag:
// requests come from the client, responses from the server.
func ldapOpSide(tag byte) (Side, bool) {
	switch tag {
	case 0x60, 0x42, 0x63, 0x66, 0x68, 0x4a, 0x6c, 0x6e, 0x50, 0x77:
		// bind, unbind, search, modify, add, del, modDN, compare,
		// abandon, extended
		return SideClient, true
	case 0x61, 0x64, 0x65, 0x73, 0x67, 0x69, 0x6b, 0x6d, 0x6f, 0x78, 0x79:
		// bindResponse, searchResEntry, searchResDone, searchResRef,
		// modifyResponse, addResponse, delResponse, modDNResponse,
		// compareResponse, extendedResponse, intermediateResponse
		return SideServer, true
	}
	return SideEither, false
}

// identifyLDAP recognises an LDAPMessage: SEQUENCE, messageID INTEGER,
// then a protocolOp APPLICATION tag whose element fits in the sequence.
// Windows sends lengths in the four-byte long form (0x84).
func identifyLDAP(b []byte, _ int, _ *Identification) match {
	if b[0] != 0x30 {
		return match{}
	}
	seqLen, used, st := berLength(b[1:])
	switch st {
	case berCut:
		return match{needMore: true}
	case berBad:
		return match{}
	}
	off := 1 + used
	seqEnd := off + seqLen
	if off+2 > len(b) {
		return match{needMore: true}
	}
	idLen := int(b[off+1])
	if b[off] != 0x02 || idLen == 0 || idLen > 4 {
		return match{}
	}
	off += 2 + idLen
	if off+2 > len(b) {
		return match{needMore: true}
	}
	sender, ok := ldapOpSide(b[off])
	if !ok {
		return match{}
	}
	opLen, used, st := berLength(b[off+1:])
	switch st {
	case berCut:
		return match{app: AppLDAP, conf: ConfidenceMedium, sender: sender}
	case berBad:
		return match{}
	}
	if off+1+used+opLen > seqEnd {
		return match{}
	}
	return match{app: AppLDAP, conf: ConfidenceHigh, sender: sender}
}

// identifyLDAPSASL recognises an LDAP message wrapped by a SASL security
// layer after a Kerberos bind with signing (as Windows does by default): a
// four-byte length, then a GSS-API wrap token of RFC 4121 (05 04, flags,
// filler ff). Nothing says it is LDAP but the port, so the confidence is
// low.
func identifyLDAPSASL(b []byte, _ int, _ *Identification) match {
	if len(b) < 8 || b[0] != 0 {
		return match{}
	}
	n := binary.BigEndian.Uint32(b)
	if n < 16 || b[4] != 0x05 || b[5] != 0x04 || b[6]&0xf8 != 0 || b[7] != 0xff {
		return match{}
	}
	return match{app: AppLDAP, conf: ConfidenceLow, sender: SideEither}
}

// kerberosRecordMarkLen is the TCP record mark (RFC 4120 7.2.2): a
// four-byte big-endian length whose high bit is reserved.
const kerberosRecordMarkLen = 4

func identifyKerberosTCP(b []byte, _ int, _ *Identification) match {
	if b[0] != 0 {
		return match{}
	}
	if len(b) < kerberosRecordMarkLen+1 {
		return match{needMore: true}
	}
	n := binary.BigEndian.Uint32(b)
	if n < 16 || n > 1<<20 {
		return match{}
	}
	return identifyKerberosMessage(b[kerberosRecordMarkLen:])
}

func identifyKerberosUDP(b []byte, _ int, _ *Identification) match {
	return identifyKerberosMessage(b)
}

// identifyKerberosMessage recognises AS-REQ (APPLICATION 10), TGS-REQ
// (12), AS-REP (11), TGS-REP (13) and KRB-ERROR (30): the application tag,
// a SEQUENCE, then pvno 5 and a msg-type that repeats the tag's number.
// Requests number these fields [1] and [2], replies and errors [0] and
// [1].
func identifyKerberosMessage(b []byte) match {
	var sender Side
	switch b[0] {
	case 0x6a, 0x6c:
		sender = SideClient
	case 0x6b, 0x6d, 0x7e:
		sender = SideServer
	default:
		return match{}
	}
	appLen, used, st := berLength(b[1:])
	switch st {
	case berCut:
		return match{needMore: true}
	case berBad:
		return match{}
	}
	off := 1 + used
	appEnd := off + appLen
	if off >= len(b) {
		return match{needMore: true}
	}
	if b[off] != 0x30 {
		return match{}
	}
	seqLen, used, st := berLength(b[off+1:])
	switch st {
	case berCut:
		return match{needMore: true}
	case berBad:
		return match{}
	}
	off += 1 + used
	if off+seqLen > appEnd {
		return match{}
	}
	first := byte(0xa0)
	if sender == SideClient {
		first = 0xa1
	}
	want := [10]byte{first, 0x03, 0x02, 0x01, 0x05, first + 1, 0x03, 0x02, 0x01, b[0] & 0x1f}
	have := b[off:min(len(b), off+len(want))]
	if string(have) != string(want[:len(have)]) {
		return match{}
	}
	if len(have) < len(want) {
		return match{needMore: true}
	}
	return match{app: AppKerberos, conf: ConfidenceHigh, sender: sender}
}
