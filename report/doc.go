// Package report writes what replay (or the daemon) found: NDJSON, one
// object per flow, for programs (the fields of DESIGN.md "Replay output"),
// and the report a person reads, per rule, the worst first, as a table that
// fits a terminal (WriteText) or as one self-contained HTML page
// (WriteHTML), which is also the daemon's status page. Both draw the same
// View of a Summary, whose memory is bounded whatever the traffic. Filter
// selects the flows a replay reports and the daemon's flow API lists.
package report
