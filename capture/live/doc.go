// Package live captures packets from network interfaces: libpcap on Unix
// (through cgo and gopacket), Npcap on Windows (through a binding of its
// own, without cgo). A Handle is a capture.Reader, so the pipeline reads a
// live interface exactly as it reads a file; only this package links
// libpcap, which keeps the readers, decoders and everything above them
// testable without libpcap's headers.
//
// On Windows nothing of Npcap is loaded until a capture opens or the
// interfaces are listed: wpcap.dll comes from System32\Npcap, else
// System32, never from the program's or the working directory, and each
// function is resolved when first used. A machine without Npcap, or with
// an incomplete wpcap.dll (an old WinPcap, Wine's), runs every command
// that does not capture, and the one that does says which DLL lacks which
// function. (gopacket's own Windows binding resolves every function when
// the program starts and panics on the first one missing.)
//
// Interfaces lists what can be captured on with every name a person knows
// an interface by (on Windows the friendly name such as Ethernet0, the
// GUID, the Npcap device \Device\NPF_{GUID} and the index), and Open
// accepts any of them, ignoring case (Resolve).
//
// Errors say whether trying again can help. Open and CheckFilter wrap one
// of the kinds below, for errors.Is: ErrUnavailable (no live capture in
// this build, or no usable Npcap), ErrPermission (no right to capture) and
// ErrBadFilter (a filter libpcap refuses) do not go away by themselves,
// and Permanent reports them; ErrNoDevice and ErrNotUp (an interface not
// there, or not up, yet) may, and a daemon retries them.
package live
