// Package daemon is the live monitor behind `tpwatch run`: it opens one
// capture per interface, feeds each into its own flow table through the
// same pipeline replay uses, serves the verdicts as Prometheus metrics,
// logs every blocked or unexpected flow once (behind a rate limit), and
// reloads the site config on request without losing flow state. Beside
// the metrics, behind the same TLS and authentication, it serves a status
// page (the HTML report of what it has seen since it started, with the
// last problem flows) and a flow API listing those flows from a bounded
// ring, which `tpwatch observe` follows.
//
// Each interface has its own goroutine, flow table and counters, so the
// tables keep their one-writer rule. The policy they consult sits behind
// an atomic pointer: a reload parses and compiles the new config first and
// swaps it in only when that succeeded, so a bad file changes nothing but
// the reload metric.
//
// A capture that cannot open, or fails later, is retried with exponential
// backoff and shown as tpwatch_capture_up 0; it never stops the metrics
// endpoint or the other interfaces.
package daemon
