package classifier

// AliveSink is a Sink that also hears, now and then, of allowed flows that
// are still open. A persistent session (an agent's gRPC channel to the
// Enterprise Manager, a SQL connection pool) is decided once, when it
// starts, and may stay open for days while it goes on proving that its
// rule works; a "not seen working for 10 minutes" alert needs to know.
//
// Alive is called for an allowed flow each time the sweep finds it still
// open at its idle deadline check: at most once per idle timeout (TCPIdle,
// UDPIdle) of packet time per flow, never per packet.
type AliveSink interface {
	Sink
	Alive(r *FlowRecord)
}
