package daemon

import (
	"sync"
	"time"
)

// tokenBucket lets through rate events a second on average and burst at
// once. Every interface's flow sink shares one, so the log's volume is
// bounded for the whole daemon.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens a second; < 0 means unlimited
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newTokenBucket(rate float64, burst int, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// Allow takes a token if there is one.
func (b *tokenBucket) Allow() bool {
	if b.rate < 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	if elapsed := t.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed*b.rate)
		b.last = t
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
