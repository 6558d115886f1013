package dissect

// Transport is the transport protocol a payload came in, valued as its IP
// protocol number (the same numbers as policy.Transport).
type Transport uint8

const (
	TCP Transport = 6
	UDP Transport = 17
)

func (t Transport) String() string {
	switch t {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "invalid"
}

// Side is an end of a connection. The zero value says "either": a payload
// either end may send, or a side not known.
type Side uint8

const (
	SideEither Side = iota
	SideClient
	SideServer
)

func (s Side) String() string {
	switch s {
	case SideClient:
		return "client"
	case SideServer:
		return "server"
	}
	return "either"
}
