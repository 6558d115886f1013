// Package live captures packets from network interfaces: libpcap on Unix
// (through cgo), Npcap on Windows. A Handle is a capture.Reader, so the
// pipeline reads a live interface exactly as it reads a file; only this
// package links libpcap, which keeps the readers, decoders and everything
// above them testable without libpcap's headers.
//
// Errors say whether trying again can help. Open and CheckFilter wrap one
// of the kinds below, for errors.Is: ErrUnavailable (this binary has no
// live capture), ErrPermission (no right to capture) and ErrBadFilter (a
// filter libpcap refuses) do not go away by themselves, and Permanent
// reports them; ErrNoDevice and ErrNotUp (an interface not there, or not
// up, yet) may, and a daemon retries them.
package live
