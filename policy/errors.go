package policy

import (
	"fmt"
	"strings"
)

// ConfigError is one problem in a config or matrix file, at the place a
// text editor would jump to. Line and Column are 1-based; 0 means unknown.
type ConfigError struct {
	File         string
	Line, Column int
	Msg          string
}

func (e ConfigError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ConfigErrors is every problem found in one file, in file order, so a user
// fixes them all in one pass instead of one per run.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
