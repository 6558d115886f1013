// Package pipeline connects a capture source to the classifier: records are
// read, their headers decoded and the packets handed, in batches, to the
// flow table. One path serves replay (capture files) and the live daemon
// (libpcap/Npcap handles); only the source differs.
//
// Reading and decoding run on one goroutine and the flow table on another,
// exchanging fixed batches of decoded packets through channels: on a
// two-core machine that overlaps the two halves of the work without any
// lock on the table, which has exactly one writer. A table that has
// ProcessBatch (BatchTable) gets whole batches, on both paths.
package pipeline
