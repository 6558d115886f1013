package capture

// Idle is returned by a live source's Next when its read timeout passed
// with no packet. Now is the wall-clock time in Unix ns: it becomes the
// packet clock, so that an unanswered attempt on a quiet network is still
// decided after its timeout.
type Idle struct{ Now int64 }

func (e *Idle) Error() string { return "no packet before the read timeout" }
