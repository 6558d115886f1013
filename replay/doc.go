// Package replay is the offline use case behind `tpwatch replay`: it reads
// capture files as one capture, classifies every flow with the pipeline
// the daemon uses, and produces what a support engineer asked for (the
// summary for the report and the exit status, NDJSON lines, the daemon's
// metrics as a textfile), with progress on the way. The command line only
// turns flags into a Config and a Result into output and an exit status.
package replay
