// Package capture reads packet capture files and decodes the headers of the
// packets in them into the fixed-size Packet the flow table consumes.
//
// It has two halves that share nothing but types:
//
//   - Readers (OpenFile, NewReader) turn a classic pcap file (micro- or
//     nanosecond timestamps, either byte order, optionally gzip-compressed)
//     or a pcapng file (several sections, interfaces and link types) into a
//     stream of Records. A reader owns one buffer, grown only as far as one
//     legal record needs, and hands out each record's bytes as a slice of
//     that buffer: reading allocates nothing per record and makes no system
//     call per record. A record's Data is valid until the next call to Next.
//     Lengths read from a file are checked before they are trusted, so a
//     header that claims gigabytes costs nothing but an error.
//
//   - Decode reads the link, IP and transport headers of one packet into a
//     Packet the caller reuses, following tunnels (VXLAN, Geneve, GRE,
//     ERSPAN, MPLS, IP in IP and a few more, up to MaxTunnels deep:
//     tunnel.go) to the packet inside. It never allocates, never reads past
//     the slice it is given and never panics; what it could not decode is
//     reported as a Status (truncated, malformed, not IP, unsupported link)
//     for the caller to count. DecodeFlow4 is its short way for the
//     commonest frame (untagged Ethernet, unfragmented IPv4, TCP or UDP):
//     it either refuses a frame, which Decode then decodes, or reads what
//     Decode would, as tests check over the whole corpus.
//
// Lengths in a Packet come from the headers, not from how much was
// captured: PayloadLen is the TCP or UDP payload length the packet declares
// (for other protocols, the length of the IP payload), so a capture taken
// with a short snap length still accounts bytes correctly.
//
// Live capture (libpcap/Npcap) lives in the live*.go files of this package
// and produces the same Records.
package capture
