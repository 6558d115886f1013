package report

import (
	"testing"
	"time"
)

// TestSpanDuration: a capture's span reads as a person would say it.
func TestSpanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3021 * time.Millisecond:                                  "3.021s",
		2*time.Hour + 3*time.Minute + 4500*time.Millisecond:      "2h3m5s",
		10330*time.Hour + 42*time.Minute + 6778*time.Millisecond: "430.4 days",
	} {
		if got := spanDuration(d); got != want {
			t.Errorf("spanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
