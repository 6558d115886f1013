// Package e2e holds tpwatch's end-to-end test: it builds a small Threat
// Prevention network out of Linux network namespaces joined by veth pairs
// through a router namespace, blocks some required flows with nftables on
// the router, runs real TCP and UDP servers and clients, and checks what the
// real `tpwatch run` binary exports on /metrics, what a real Prometheus
// makes of the alert rules and the Grafana dashboard in deploy/, what the
// status page shows in headless chromium and what tpwatch observe prints,
// and how the daemon takes SIGHUP and SIGTERM. Other tests replay floods into the
// daemon with tcpreplay (bounded memory and series, rate-limited logs,
// SIGTERM mid-flood), drop root with --user nobody, make an interface
// appear, disappear and return, and apply on every host the nftables rules
// `tpwatch policy export` writes for it (the documented flows still pass
// and come out allowed; the others are dropped). TestRPCEndpointMapper
// provisions a real Samba Active Directory domain controller whose RPC
// range is restricted to 5000-5010, and checks that the port its endpoint
// mapper announces to rpcclient is matched to the dynamic RPC rule, and
// reported blocked when the router drops it.
//
// It needs root, ip (iproute2), nft (nftables), tcpreplay and tcpdump, and
// for the domain controller samba, samba-ad-provision, samba-dsdb-modules,
// samba-vfs-modules and smbclient (`make deps` installs them all); it runs
// with `go test ./e2e/`. Outside CI it skips when those are missing; under CI
// (the CI environment variable set) it fails instead. Nothing is changed
// outside the namespaces it creates but veth pairs of its own in the root
// namespace (unique names, no address, no route), removed at the end of
// each test.
package e2e
