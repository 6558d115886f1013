package replay

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// peakRSS returns the process's peak resident memory in bytes (Linux's
// VmHWM), or 0 where it cannot be read. It measures this process only:
// a parent's rusage of a vforked child also counts the parent's pages.
func peakRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
