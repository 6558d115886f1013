// Package pcaps writes tpwatch's test captures and their expected verdicts.
//
// Every committed capture in this directory comes from a scenario defined in
// Go: the scenario builds each flow's packets with gopacket/layers at fixed
// timestamps (from Epoch, stepping by microseconds), writes them with
// gopacket/pcapgo, writes the site config the capture is meant to be
// replayed with, and writes what tpwatch must conclude about every flow
// (<capture>.expected.ndjson). The expectations come from the scenario's
// intent, never from running tpwatch, so they can catch it being wrong.
//
// The expected file holds one JSON object per flow, ignored flows included
// (compare with `tpwatch replay --all --format json`), sorted by transport,
// client address (numerically, IPv4 before IPv6), client port, server
// address and server port, with the fields transport, src_ip, src_port
// (the client), dst_ip, dst_port (the server), rule, verdict, reason,
// conn_state, and icmp_type/icmp_code when an ICMP error decided the flow.
//
// `go run ./pcaps/cmd/gencaps -out pcaps/` rewrites everything; a test
// fails when a committed file differs from what the generator writes.
// WriteBench writes the large, synthetic capture used for performance work;
// it is built from patched byte templates, not gopacket layers, so that ten
// million packets take seconds.
package pcaps
