// Package e2e holds tpwatch's end-to-end test: it builds a small Threat
// Prevention network out of Linux network namespaces joined by veth pairs
// through a router namespace, blocks some required flows with nftables on
// the router, runs real TCP and UDP servers and clients, and checks what the
// real `tpwatch run` binary exports on /metrics, what a real Prometheus
// makes of the alert rules and the Grafana dashboard in deploy/, and how the
// daemon takes SIGHUP and SIGTERM.
//
// It needs root, ip (iproute2) and nft (nftables), and runs with
// `go test ./e2e/`. Outside CI it skips when those are missing; under CI
// (the CI environment variable set) it fails instead. Nothing is changed
// outside the namespaces it creates but one veth interface in the root
// namespace (no address, no route), which disappears with them.
package e2e
