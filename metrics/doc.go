// Package metrics exports what tpwatch sees as Prometheus metrics: the
// verdict of every flow per matrix rule, the unexpected flows (with a capped
// port label), when each rule was last seen working, capture and flow-table
// health, config reloads and build information. It also serves them over
// HTTP (TLS and basic auth through an exporter-toolkit web config file) and
// writes them as a node_exporter textfile.
//
// The pipeline never touches a label on its hot path. It keeps plain
// counters (atomics in fixed arrays, or its own counters read through a
// snapshot function), and each collector here turns them into const metrics
// when Prometheus scrapes. One file per collector, named after what it
// collects, in the way of node_exporter.
//
// Nothing registers on the global registry: the caller builds a
// prometheus.Registry, registers the collectors it wants and hands the
// registry to NewHandler or WriteTextfile, so tests gather from a fresh one.
//
// The metric names are a contract that the Grafana dashboard and the alert
// rules in deploy/ rely on; never rename one.
package metrics
