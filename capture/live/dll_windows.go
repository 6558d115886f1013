//go:build windows

package live

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// npcapURL is where a person gets Npcap; tpwatch may not bundle it (its
// free licence forbids redistribution).
const npcapURL = "https://npcap.com"

// wpcap is Npcap's wpcap.dll. Nothing of it is loaded until a command
// captures or lists interfaces, and each function is looked up on its
// first use: a machine without Npcap, or with a wpcap.dll that lacks a
// function (Wine's, an old WinPcap), still runs every other command, and
// the command that needs the missing piece says which DLL lacks which
// function. gopacket's own Windows binding resolves ~60 functions when the
// program starts and panics on the first one missing, which is why this
// package does not use it on Windows.
var wpcap lib

// lib is a DLL loaded on first use, with its functions resolved one by one.
type lib struct {
	once sync.Once
	h    windows.Handle
	path string // the file loaded, for messages
	err  error
	wine bool // the program runs under Wine: see wineStubs

	mu    sync.Mutex
	procs map[string]uintptr
}

// load loads the DLL once; every later call returns the first outcome.
func (l *lib) load() error {
	l.once.Do(func() {
		l.h, l.path, l.err = loadWpcap()
		l.wine = underWine()
	})
	return l.err
}

// proc returns the address of the function name, or an error that names
// the DLL file and the function.
func (l *lib) proc(name string) (uintptr, error) {
	if err := l.load(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.procs[name]; ok {
		return p, nil
	}
	if l.wine && wineStubs[name] {
		return 0, fmt.Errorf("%w: %s has no working %s (Wine exports it as a stub that aborts the program)", ErrUnavailable, l.path, name)
	}
	p, err := windows.GetProcAddress(l.h, name)
	if err != nil {
		return 0, fmt.Errorf("%w: %s has no function %s (an old WinPcap or another incomplete wpcap.dll; install Npcap from %s): %v",
			ErrUnavailable, l.path, name, npcapURL, err)
	}
	if l.procs == nil {
		l.procs = map[string]uintptr{}
	}
	l.procs[name] = p
	return p, nil
}

// all resolves several functions at once, for an operation that needs
// them all: the first one missing is the error.
func (l *lib) all(names ...string) ([]uintptr, error) {
	out := make([]uintptr, len(names))
	for i, n := range names {
		p, err := l.proc(n)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// optional returns the address of name, or 0 when the DLL lacks it.
func (l *lib) optional(name string) uintptr {
	p, err := l.proc(name)
	if err != nil {
		return 0
	}
	return p
}

// wineStubs are functions Wine's own wpcap.dll (a wrapper over the host's
// libpcap) exports only as stubs, which abort the whole process when
// called: under Wine they count as missing. Found by running tpwatch
// under Debian's Wine 8.0 (pcap_open_dead: "Call from ... to
// unimplemented function wpcap.dll.pcap_open_dead, aborting").
var wineStubs = map[string]bool{"pcap_open_dead": true}

// underWine reports whether the program runs under Wine, which ntdll.dll
// says by exporting wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// loadWpcap loads wpcap.dll from System32\Npcap (Npcap's native place),
// then from System32 (Npcap's WinPcap-compatible mode, or WinPcap), and
// from nowhere else: not the program's directory, the working directory
// or PATH, where a planted wpcap.dll would run with the service's rights.
// The directory of the DLL is searched for its own dependencies
// (Packet.dll beside it), and System32 for the system's.
func loadWpcap() (windows.Handle, string, error) {
	sys, err := windows.GetSystemDirectory()
	if err != nil {
		return 0, "", fmt.Errorf("%w: find the system directory: %v", ErrUnavailable, err)
	}
	npcapDir := sys + `\Npcap`
	// Npcap's developer guide asks for this before loading wpcap.dll, so
	// that a DLL wpcap.dll itself loads later by name (Packet.dll) comes
	// from Npcap too; it also takes the working directory out of the
	// default search order of the process.
	_ = windows.SetDllDirectory(npcapDir)
	var tried []string
	for _, path := range []string{npcapDir + `\wpcap.dll`, sys + `\wpcap.dll`} {
		h, err := windows.LoadLibraryEx(path, 0, windows.LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR|windows.LOAD_LIBRARY_SEARCH_SYSTEM32)
		if err == nil {
			return h, modulePath(h, path), nil
		}
		if !errors.Is(err, windows.ERROR_MOD_NOT_FOUND) && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) && !errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
			// There, but unusable (another architecture, a dependency
			// missing): say so rather than fall back to another one.
			return 0, "", fmt.Errorf("%w: load %s: %v (reinstall Npcap from %s)", ErrUnavailable, path, err, npcapURL)
		}
		tried = append(tried, path)
	}
	return 0, "", fmt.Errorf("%w: Npcap is not installed (no %s nor %s): install it from %s, with \"Restrict Npcap driver's access to Administrators only\" if only tpwatch and administrators may capture, then try again",
		ErrUnavailable, tried[0], tried[1], npcapURL)
}

// modulePath is the file a loaded module came from, or the path asked for.
func modulePath(h windows.Handle, asked string) string {
	var buf [windows.MAX_LONG_PATH]uint16
	n, err := windows.GetModuleFileName(h, &buf[0], uint32(len(buf)))
	if err != nil || n == 0 {
		return asked
	}
	return windows.UTF16ToString(buf[:n])
}

// cString copies the NUL-terminated string at p, which libpcap owns (an
// error text, a device name), into Go memory.
func cString(p uintptr) string {
	if p == 0 {
		return ""
	}
	// The address comes from C, never from the Go heap: reading it through
	// a pointer variable keeps go vet's unsafeptr check meaningful for the
	// rest of the package.
	return windows.BytePtrToString(*(**byte)(unsafe.Pointer(&p)))
}

// errbufString is the text libpcap wrote into an error buffer.
func errbufString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
