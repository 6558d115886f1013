//go:build !unix

package classifier

import "errors"

// mapBytes is not available here: the table's arrays are Go slices.
func mapBytes(int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapBytes([]byte) {}
