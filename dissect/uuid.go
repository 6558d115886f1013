package dissect

// UUID is a DCE UUID (an interface or transfer syntax identifier) in the
// byte order of its string form, so that two UUIDs compare as values
// whatever the byte order they were read in.
type UUID [16]byte

// uuidLE reads the 16 bytes of a UUID as NDR puts it with little-endian
// data representation, and as towers always put it: the first three fields
// (u32, u16, u16) little-endian, the last eight bytes as they are.
func uuidLE(b []byte) UUID {
	_ = b[15]
	return UUID{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6],
		b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]}
}

// uuidBE reads a UUID sent with big-endian data representation: already in
// string order.
func uuidBE(b []byte) UUID { return UUID(b[:16]) }

// uuidIn reads a UUID in the byte order of a PDU's data representation.
func uuidIn(b []byte, bigEndian bool) UUID {
	if bigEndian {
		return uuidBE(b)
	}
	return uuidLE(b)
}

// IsZero reports whether u is the nil UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

// String formats u as 8-4-4-4-12 lower-case hex digits.
func (u UUID) String() string {
	var buf [36]byte
	return string(u.appendTo(buf[:0]))
}

func (u UUID) appendTo(b []byte) []byte {
	const digits = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, digits[c>>4], digits[c&0x0f])
	}
	return b
}

// parseUUID reads the string form; ok is false for anything else.
func parseUUID(s string) (u UUID, ok bool) {
	if len(s) != 36 {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return u, false
			}
			i++
			continue
		}
		hi, ok1 := hexDigit(s[i])
		lo, ok2 := hexDigit(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Interface names the RPC interfaces worth naming in tpwatch's output and
// metric labels (research notes 1.6). Every other interface is
// InterfaceOther, the zero value: the label set stays bounded whatever a
// network runs, and "other" is what an unknown UUID is, not an error.
type Interface uint8

const (
	InterfaceOther Interface = iota
	InterfaceEPM
	InterfaceDRSUAPI
	InterfaceLSARPC
	InterfaceNetlogon
	InterfaceSAMR
	InterfaceSVCCTL
	InterfaceRemoteSCMActivator
	InterfaceRemoteActivation
	InterfaceObjectExporter
	InterfaceRemUnknown
	InterfaceRemUnknown2
	InterfaceWbemLevel1Login
	InterfaceNSPI
	InterfaceEMSMDB
	numInterfaces
)

// knownInterfaces holds the name and UUID of each named interface, indexed
// by Interface. Names are lower case: they are metric label values.
var knownInterfaces = [numInterfaces]struct {
	name string
	uuid UUID
}{
	InterfaceOther:    {"other", UUID{}},
	InterfaceEPM:      {"epmapper", mustUUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa")},
	InterfaceDRSUAPI:  {"drsuapi", mustUUID("e3514235-4b06-11d1-ab04-00c04fc2dcd2")},
	InterfaceLSARPC:   {"lsarpc", mustUUID("12345778-1234-abcd-ef00-0123456789ab")},
	InterfaceNetlogon: {"netlogon", mustUUID("12345678-1234-abcd-ef00-01234567cffb")},
	InterfaceSAMR:     {"samr", mustUUID("12345778-1234-abcd-ef00-0123456789ac")},
	InterfaceSVCCTL:   {"svcctl", mustUUID("367abb81-9844-35f1-ad32-98f038001003")},
	// MS-DCOM's name; Wireshark calls it ISystemActivator. WMI's
	// RemoteCreateInstance goes through it on port 135.
	InterfaceRemoteSCMActivator: {"iremotescmactivator", mustUUID("000001a0-0000-0000-c000-000000000046")},
	// The older activation interface (RemoteActivation, opnum 0).
	InterfaceRemoteActivation: {"iremoteactivation", mustUUID("4d9f4ab8-7d1c-11cf-861e-0020af6e7c57")},
	InterfaceObjectExporter:   {"iobjectexporter", mustUUID("99fcfec4-5260-101b-bbcb-00aa0021347a")},
	InterfaceRemUnknown:       {"iremunknown", mustUUID("00000131-0000-0000-c000-000000000046")},
	InterfaceRemUnknown2:      {"iremunknown2", mustUUID("00000143-0000-0000-c000-000000000046")},
	InterfaceWbemLevel1Login:  {"iwbemlevel1login", mustUUID("f309ad18-d86a-11d0-a075-00c04fb68820")},
	InterfaceNSPI:             {"nspi", mustUUID("f5cc5a18-4264-101a-8c59-08002b2f8426")},
	InterfaceEMSMDB:           {"emsmdb", mustUUID("a4f1db00-ca47-1067-b31f-00dd010662da")},
}

// mustUUID is for the constants above only: a typo there is a programming
// error that the package's first test run reports.
func mustUUID(s string) UUID {
	u, ok := parseUUID(s)
	if !ok {
		panic("dissect: bad UUID constant " + s)
	}
	return u
}

// LookupInterface names u, or returns InterfaceOther.
func LookupInterface(u UUID) Interface {
	for i := InterfaceOther + 1; i < numInterfaces; i++ {
		if knownInterfaces[i].uuid == u {
			return i
		}
	}
	return InterfaceOther
}

// UUID returns the interface's UUID (the nil UUID for InterfaceOther).
func (i Interface) UUID() UUID {
	if i < numInterfaces {
		return knownInterfaces[i].uuid
	}
	return UUID{}
}

func (i Interface) String() string {
	if i < numInterfaces {
		return knownInterfaces[i].name
	}
	return "other"
}

// Transfer syntaxes (research notes 1.2): the first 16 bytes of a syntax
// identifier, in string order.
var (
	syntaxNDRUUID   = mustUUID("8a885d04-1ceb-11c9-9fe8-08002b104860")
	syntaxNDR64UUID = mustUUID("71710533-beba-4937-8319-b5dbef9ccc36")
)

// Syntax is the transfer syntax of a presentation context: how the stubs
// of its calls are encoded.
type Syntax uint8

const (
	SyntaxUnknown Syntax = iota
	SyntaxNDR
	SyntaxNDR64
)

func (s Syntax) String() string {
	switch s {
	case SyntaxNDR:
		return "ndr"
	case SyntaxNDR64:
		return "ndr64"
	}
	return "unknown"
}

func syntaxOf(u UUID) Syntax {
	switch u {
	case syntaxNDRUUID:
		return SyntaxNDR
	case syntaxNDR64UUID:
		return SyntaxNDR64
	}
	return SyntaxUnknown
}
