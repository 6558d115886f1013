package dissect

import "encoding/binary"

// TDS (MS-TDS 2.2.3, 2.2.6.5), DCE/RPC, RDP's X.224, AMQP (0-9-1 and 1.0),
// the SQL Server Browser and syslog (research notes 2.2).

const (
	tdsHeaderLen      = 8
	tdsPrelogin       = 0x12
	tdsTabularResult  = 0x04
	tdsStatusEOM      = 0x01
	tdsOptionVersion  = 0x00
	tdsOptionTerm     = 0xff
	tdsOptionMax      = 0x0f // the highest option token accepted
	tdsVersionLen     = 6
	tdsMaxPacketLen   = 32768
	tdsMaxTokens      = 16
	tdsOptionTokenLen = 5
)

// identifyTDS recognises a TDS packet: a PRELOGIN (client) or its answer
// (server, a tabular result holding the same option list) with certainty,
// by checking the option tokens against the packet length; any other TDS
// packet only as nDPI does, by a plausible header whose length is the
// segment's.
func identifyTDS(b []byte, payloadLen int, _ *Identification) match {
	if len(b) < tdsHeaderLen {
		if b[0] == tdsPrelogin {
			return match{needMore: true}
		}
		return match{}
	}
	typ, status := b[0], b[1]
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n < tdsHeaderLen || n > tdsMaxPacketLen || b[7] != 0 {
		return match{}
	}
	if (typ == tdsPrelogin || typ == tdsTabularResult) && status&^tdsStatusEOM == 0 {
		sender := SideClient
		if typ == tdsTabularResult {
			sender = SideServer
		}
		switch tdsOptions(b[tdsHeaderLen:min(len(b), n)], n-tdsHeaderLen) {
		case berOK:
			return match{app: AppTDS, conf: ConfidenceHigh, sender: sender}
		case berCut:
			return match{app: AppTDS, conf: ConfidenceMedium, sender: sender}
		}
		if typ == tdsPrelogin {
			return match{}
		}
	}
	// Any packet: a known type, a known status, the whole packet in the
	// segment (MS-TDS 2.2.3.1).
	var sender Side
	switch typ {
	case 0x01, 0x02, 0x03, 0x06, 0x07, 0x08, 0x0e, 0x10, 0x11, tdsPrelogin:
		sender = SideClient
	case tdsTabularResult:
		sender = SideServer
	default:
		return match{}
	}
	switch status {
	case 0x00, 0x01, 0x02, 0x04, 0x08, 0x09, 0x10:
	default:
		return match{}
	}
	if n != payloadLen {
		return match{}
	}
	return match{app: AppTDS, conf: ConfidenceMedium, sender: sender}
}

// tdsOptions checks a PRELOGIN option list: 5-byte tokens (type, offset
// and length, big-endian, relative to the list's start) ending with 0xff,
// VERSION first, every option's data inside the packet (dataLen bytes)
// and after the list. berCut says the list was not wholly captured.
func tdsOptions(b []byte, dataLen int) berStatus {
	listEnd := 0
	for i := range tdsMaxTokens {
		off := i * tdsOptionTokenLen
		if off >= len(b) {
			return berCut
		}
		if b[off] == tdsOptionTerm {
			listEnd = off + 1
			break
		}
		if off+tdsOptionTokenLen > len(b) {
			return berCut
		}
		typ := b[off]
		at := int(binary.BigEndian.Uint16(b[off+1:]))
		n := int(binary.BigEndian.Uint16(b[off+3:]))
		if typ > tdsOptionMax || (i == 0 && (typ != tdsOptionVersion || n != tdsVersionLen)) || at+n > dataLen {
			return berBad
		}
	}
	if listEnd == 0 {
		return berBad // no terminator among the first tokens
	}
	// Each option's data starts after the list.
	for off := 0; off+tdsOptionTokenLen < listEnd; off += tdsOptionTokenLen {
		if int(binary.BigEndian.Uint16(b[off+1:])) < listEnd {
			return berBad
		}
	}
	return berOK
}

// identifyDCERPC recognises a connection-oriented DCE/RPC PDU by the
// strict header check the endpoint mapper's parser uses.
func identifyDCERPC(b []byte, _ int, _ *Identification) match {
	if b[0] != 5 {
		return match{}
	}
	if len(b) < rpcHeaderLen {
		if len(b) == 1 || b[1] <= 1 && (len(b) == 2 || int(b[2]) < len(minBody) && minBody[b[2]] != 0) {
			return match{needMore: true}
		}
		return match{}
	}
	h, ok := parseRPCHeader(b)
	if !ok {
		return match{}
	}
	sender := SideClient
	switch h.ptype {
	case ptypeResponse, ptypeFault, ptypeBindAck, ptypeBindNak, ptypeAlterResp, ptypeShutdown:
		sender = SideServer
	}
	return match{app: AppDCERPC, conf: ConfidenceHigh, sender: sender}
}

// identifyRDP recognises RDP's first PDU: a TPKT header (version 3, a
// length) and an X.224 connection request (client) or confirm (server);
// X.224 data of a connection caught mid-stream less surely.
func identifyRDP(b []byte, payloadLen int, _ *Identification) match {
	if b[0] != 3 {
		return match{}
	}
	if len(b) < 6 {
		if len(b) == 1 || b[1] == 0 {
			return match{needMore: true}
		}
		return match{}
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	li := int(b[4])
	if b[1] != 0 || n < 7 || li+5 > n {
		return match{}
	}
	switch b[5] & 0xf0 {
	case 0xe0, 0xd0: // connection request, connection confirm
		if li+5 != n || n != payloadLen {
			return match{}
		}
		sender := SideClient
		if b[5]&0xf0 == 0xd0 {
			sender = SideServer
		}
		return match{app: AppRDP, conf: ConfidenceHigh, sender: sender}
	case 0xf0: // data
		if li != 2 || len(b) < 7 || b[6]&0x7f != 0 {
			return match{}
		}
		return match{app: AppRDP, conf: ConfidenceMedium, sender: SideEither}
	}
	return match{}
}

// AMQP protocol headers: "AMQP" and four bytes naming the version.
const amqpHeader = "AMQP"

const (
	amqpFrameEnd      = 0xce
	amqpFrameMethod   = 1
	amqpConnection    = 10
	amqpStart         = 10
	amqpFrameOverhead = 8 // type, channel, size, frame end
	amqpMaxFrame      = 1 << 20
)

// identifyAMQP recognises a protocol header (sent by a client, and by an
// AMQP 1.0 server too), a 0-9-1 server's Connection.Start, or any 0-9-1
// frame whose frame-end byte is where its size puts it.
func identifyAMQP(b []byte, _ int, _ *Identification) match {
	if b[0] == 'A' {
		if isPrefixOf(b, amqpHeader) {
			return match{needMore: true}
		}
		if !hasPrefix(b, amqpHeader) {
			return match{}
		}
		if len(b) < 8 {
			return match{app: AppAMQP, conf: ConfidenceMedium, sender: SideClient}
		}
		switch string(b[4:8]) {
		case "\x00\x00\x09\x01", "\x01\x01\x00\x0a", "\x01\x01\x08\x00", "\x01\x01\x09\x01":
			// 0-9-1, 0-10, 0-8, 0-9: only the client sends it (a server
			// only echoes a header to refuse the version).
			return match{app: AppAMQP, conf: ConfidenceHigh, sender: SideClient}
		case "\x00\x01\x00\x00", "\x02\x01\x00\x00", "\x03\x01\x00\x00":
			// 1.0: AMQP, TLS and SASL layers; both peers send it.
			return match{app: AppAMQP, conf: ConfidenceHigh, sender: SideEither}
		}
		return match{app: AppAMQP, conf: ConfidenceMedium, sender: SideEither}
	}
	if len(b) < amqpFrameOverhead {
		return match{}
	}
	typ := b[0]
	if typ != 1 && typ != 2 && typ != 3 && typ != 8 {
		return match{}
	}
	size := int(binary.BigEndian.Uint32(b[3:]))
	if size > amqpMaxFrame {
		return match{}
	}
	endAt := 7 + size
	endSeen := endAt < len(b)
	if endSeen && b[endAt] != amqpFrameEnd {
		return match{}
	}
	if typ == amqpFrameMethod && len(b) >= 11 && b[1] == 0 && b[2] == 0 &&
		binary.BigEndian.Uint16(b[7:]) == amqpConnection && binary.BigEndian.Uint16(b[9:]) == amqpStart {
		if endSeen {
			return match{app: AppAMQP, conf: ConfidenceHigh, sender: SideServer}
		}
		return match{app: AppAMQP, conf: ConfidenceMedium, sender: SideServer}
	}
	if !endSeen {
		return match{}
	}
	return match{app: AppAMQP, conf: ConfidenceMedium, sender: SideEither}
}

// identifySSRP recognises SQL Server Browser messages (UDP 1434, 1.9 of
// the research notes): the one-byte enumeration requests only by their
// length, the instance requests by their NUL-terminated name, the answer
// by RESP_SIZE matching the datagram.
func identifySSRP(b []byte, payloadLen int, _ *Identification) match {
	switch b[0] {
	case ssrpBroadcastEx, ssrpUnicastEx:
		if payloadLen == 1 {
			return match{app: AppSSRP, conf: ConfidenceMedium, sender: SideClient}
		}
	case ssrpUnicastInst, ssrpUnicastDAC:
		var req SSRPRequest
		if len(b) == payloadLen && ParseSSRPRequest(b, &req) && req.instanceLen > 0 {
			return match{app: AppSSRP, conf: ConfidenceHigh, sender: SideClient}
		}
	case ssrpResponse:
		if len(b) < 3 {
			return match{needMore: true}
		}
		size := int(binary.LittleEndian.Uint16(b[1:]))
		switch {
		case size == ssrpDACSize && payloadLen == ssrpDACSize && len(b) == ssrpDACSize && b[3] == ssrpDACVersion:
			return match{app: AppSSRP, conf: ConfidenceHigh, sender: SideServer}
		case size+3 != payloadLen:
			return match{}
		case equalFoldASCII(b[3:min(len(b), 3+len("ServerName;"))], "ServerName;"):
			return match{app: AppSSRP, conf: ConfidenceHigh, sender: SideServer}
		}
		return match{app: AppSSRP, conf: ConfidenceMedium, sender: SideServer}
	}
	return match{}
}

// identifySyslog recognises a syslog message (RFC 3164, RFC 5424): a PRI
// of one to three digits, at most 191, in angle brackets; on TCP
// perhaps after an octet count (RFC 6587).
func identifySyslog(b []byte, _ int, _ *Identification) match {
	i := 0
	if b[0] >= '1' && b[0] <= '9' {
		for i < len(b) && i < 6 && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == len(b) {
			return match{}
		}
		if b[i] != ' ' {
			return match{}
		}
		i++
	}
	if i >= len(b) || b[i] != '<' {
		return match{}
	}
	i++
	pri, digits := 0, 0
	for ; i < len(b) && digits < 3 && b[i] >= '0' && b[i] <= '9'; i++ {
		pri = pri*10 + int(b[i]-'0')
		digits++
	}
	if i == len(b) {
		return match{needMore: digits < 3}
	}
	if digits == 0 || b[i] != '>' || pri > 191 {
		return match{}
	}
	return match{app: AppSyslog, conf: ConfidenceMedium, sender: SideClient}
}
