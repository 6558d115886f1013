//go:build !linux

package classifier

func residentBytes() (int64, bool) { return 0, false }
