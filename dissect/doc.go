// Package dissect reads what tpwatch needs from the first payload bytes of
// a flow direction: the ports the DCE/RPC endpoint mapper and DCOM
// activation hand out, the TCP port SQL Server Browser announces, and which
// application protocol a flow carries.
//
// It is a leaf package (standard library only) built for the packet path:
// every function reads the payload slice it is given, as captured (perhaps
// cut by a snap length), never keeps it, never allocates and never panics.
// Every count and length read from the wire is checked against the bytes
// present before it is used, so a hostile or misdecoded payload costs at
// most one pass over its bytes. Results go into structs the caller owns and
// reuses; their byte fields (a TLS server name, a DCOM host, an instance
// name) are fixed-size arrays, copied out of the payload and bounded.
//
// # Three learners and one identifier
//
// RPCConn follows one TCP connection to an endpoint mapper (port 135). The
// caller keeps one per such connection and feeds it every payload-carrying
// segment of both directions, in capture order, with the segment's TCP
// sequence number. It is 3 KB without a pointer (a 2 KB buffer puts back
// together an answer that spans segments or fragments): keep them in a
// bounded pool beside the flow table, with the pool index in the flow's
// entry, taken at the first payload to port 135 and returned when the
// flow ends; a connection that finds the pool empty is counted and not
// followed. It remembers the little the protocol needs from one PDU to
// the next: the presentation contexts a bind proposed and its bind_ack
// accepted (with their transfer syntax, NDR or NDR64), the opnum and
// interface of the last calls, where the next PDU header starts. From
// ept_map responses it learns the (interface, TCP port, floor IP) of every
// connection-oriented TCP tower; from DCOM activation responses
// (RemoteCreateInstance, RemoteActivation, OXID resolution) the (host,
// port) of each ncacn_ip_tcp string binding. Faults, sealed stubs (auth
// level privacy), error statuses and PDUs it cannot read are counted in
// the RPCResult, never guessed at. The server address of what it learns
// is the connection's: the caller keys the learned-endpoint table on it.
//
// ParseSSRPResponse reads a SQL Server Browser answer (UDP 1434, MC-SQLR):
// the TCP port of each instance, or the dedicated admin connection's port.
// ParseSSRPRequest reads the question, which names the instance asked for.
// Both are stateless: the caller matches an answer to its request by the
// UDP flow.
//
// Identify names the application protocol of a flow direction from its
// first payload (TLS, with the ClientHello's server name and ALPN list;
// HTTP/2 and gRPC; HTTP/1.x; TDS; AMQP; SMB; NetBIOS session; DCE/RPC;
// LDAP; Kerberos; and on UDP the SQL Browser, NetBIOS name and datagram
// services and syslog), with how sure it is and which end of a connection
// sends such bytes: a bind, a ClientHello or a request line comes only
// from a client, which settles the direction of a flow whose start was not
// captured. It is stateless: call it on the first payload of each
// direction and keep the App (one byte), the Sender and, for TLS, the
// ALPNSet; the server name and ALPN names are in the Identification for
// the flow's event. ExpectedApps says, per matrix rule and port, which
// protocols a documented port may carry, so the classifier can tell a
// protocol mismatch from a flow that merely used the right port.
//
// Sources for every layout are in shared/research/protocols-windows-reports.md
// sections 1 and 2 (C706, MS-RPCE, MS-DCOM, MC-SQLR, RFC 8446, RFC 7540,
// MS-TDS, RFC 4511, RFC 4120); the tests hold real frames of the shared
// corpus with their hex dumps.
package dissect
