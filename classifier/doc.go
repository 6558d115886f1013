// Package classifier follows flows and decides their verdicts: it keeps the
// flow table, runs each flow's TCP or UDP state machine on the decoded
// packets of capture, asks the policy once per flow which rule applies, and
// tells a Sink when a flow's verdict is known (Decided) and when the flow
// ends (Final).
//
// # Time
//
// The only clock is packet time: Process moves it with each packet and
// Advance moves it on a quiet live capture. Every deadline (the attempt
// timeout, the idle timeouts, the linger after a close) is a condition
// "deadline <= now", checked whenever the flow is touched, by an
// incremental sweep and at Flush, so a decision never depends on when the
// check happens to run, and the same input always gives the same output in
// the same order. The sweep's work follows packet time (every entry about
// once a second of packet time, spread over the packets), not the packet
// rate; Advance sweeps the whole table.
//
// # Flow table
//
// A Table has exactly one writer (the goroutine of its shard; FlowHash
// spreads packets across shards). It is four flat, pointer-free arrays
// the garbage collector never scans:
//
//   - the entries, dense: entry i of the first Active ones is a live flow
//     (a fixed-size canonical key, counters, history and verdict: what its
//     packets read and write, in one 64-byte cache line);
//   - beside each entry its meta, 16 bytes (first time, roles, rule, ICMP
//     type), which only creating, deciding and ending the flow touch;
//   - an open-addressing index over them, 8 bytes a slot (32 bits of the
//     key's hash and the entry number), linear probing with backward-shift
//     deletion, at a load factor of at most 3/4;
//   - a due time for each entry, 2 bytes (a lower bound of its next
//     deadline, in units of 67 ms), so that the sweep passes over the
//     entries whose time has not come without reading them.
//
// Splitting the index from the entries keeps the memory per flow near the
// entry size: at MaxFlows = 1<<20, a flat table of 80-byte flows at load
// 3/4 or less needs 2^21 slots, 160 bytes a flow; the split one needs
// 64 + 16 + 16 + 2 = 98. It costs a second memory access per packet.
//
// A key holds each address in one 8-byte word: an IPv4 address as itself,
// an IPv6 address as its number in a pool of the addresses of live flows
// (wideAddrs), which costs IPv6 packets a map look-up per address and
// keeps every entry at 64 bytes. The index is rebuilt from its own hash bits when it grows,
// without touching the entries; the sweep and Flush
// walk the dense entries, never empty slots.
//
// ProcessBatch follows a batch of packets with the effect of Process on
// each in turn, but first computes their keys and loads their index slots,
// then their entries, in tight loops of independent loads: the CPU then
// waits for thirty-odd cache misses at once instead of two after another
// for each packet, which made a table larger than the caches three times
// faster (docs/performance.md).
//
// The table holds up to Options.MaxFlows flows: its entries are mapped for
// all of them where the system allows and backed as they are used, else
// they grow by doubling; the index doubles as its load requires. When it is
// full,
// a new flow takes the place of one of the flows near its index slot,
// preferring one nothing has answered (an unanswered attempt, a scan), else
// the least recently seen: the evicted flow is reported with Evicted set.
// The hash is seeded from the table's first flow's packet (or by the
// reading goroutine, from the same packet: a Loader), so that input
// crafted against a known seed cannot pile every flow into one probe run
// while a replay stays deterministic.
package classifier
