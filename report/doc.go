// Package report writes what replay found: NDJSON, one object per flow, for
// programs (the fields of DESIGN.md "Replay output"), and the table a person
// reads, per rule, the worst first.
package report
