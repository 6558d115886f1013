package report

import (
	"time"

	"github.com/tpwatch/tpwatch/classifier"
)

// timelineBuckets is how many bars the timeline has at most: enough to see
// when a port started failing, few enough to draw on a printed page.
const timelineBuckets = 120

// timelineBase is the narrowest bucket: a capture of a few seconds still
// gets its bars.
const timelineBase = int64(time.Millisecond)

// maxTimelineWidth bounds the bucket width, so that the window's
// arithmetic stays within int64 (it covers about 270 years).
const maxTimelineWidth = int64(1) << 56

// timeline counts flows by verdict over time in a fixed number of buckets
// that widen as the time it covers grows: a bucket is a power-of-two
// multiple of timelineBase, aligned on a multiple of its width from the
// Unix epoch, so that doubling the width merges buckets two by two exactly
// and a flow is never counted in a different bucket than a longer capture
// would put it. Adding a flow allocates nothing.
type timeline struct {
	start  int64 // Unix ns of bucket 0; a multiple of width
	width  int64 // 0 until the first flow
	counts [timelineBuckets][classifier.NumVerdicts]uint64
}

// add counts a flow that started at ns.
func (t *timeline) add(ns int64, v classifier.Verdict) {
	if int(v) >= classifier.NumVerdicts || ns <= 0 {
		return
	}
	if t.width == 0 {
		t.width = timelineBase
		t.start = floorTo(ns, t.width)
	}
	// start is never negative and ns is positive: ns-start cannot
	// overflow.
	for ns < t.start || ns-t.start >= timelineBuckets*t.width {
		if 2*t.width > maxTimelineWidth {
			// Times centuries apart (a corrupt capture): the far one
			// goes in the edge bucket rather than overflow the window.
			if ns < t.start {
				ns = t.start
			} else {
				ns = t.start + timelineBuckets*t.width - 1
			}
			break
		}
		t.widen(ns)
	}
	t.counts[(ns-t.start)/t.width][v]++
}

// widen doubles the bucket width, moving the start back to a multiple of
// the new width, and merges the old buckets into the new ones. When ns
// lies before the start, it also moves the window so that it ends where
// the old one did: the buckets on the right were counted, those on the
// left are empty.
func (t *timeline) widen(ns int64) {
	var merged [timelineBuckets][classifier.NumVerdicts]uint64
	width := 2 * t.width
	start := floorTo(t.start, width)
	if ns < t.start {
		// The old buckets end at t.start+timelineBuckets*t.width; the new
		// window ends at or after it.
		end := t.start + timelineBuckets*t.width
		start = floorTo(end-1, width) - (timelineBuckets-1)*width
		start = min(start, floorTo(t.start, width))
		if start < 0 {
			// Before the epoch: grow to the right instead, the start
			// moves down to 0 as the width grows.
			start = floorTo(t.start, width)
		}
	}
	for i := range t.counts {
		at := t.start + int64(i)*t.width
		j := (at - start) / width
		if j < 0 || j >= timelineBuckets {
			continue // cannot happen: the window covers the old one
		}
		for v := range t.counts[i] {
			merged[j][v] += t.counts[i][v]
		}
	}
	t.counts, t.start, t.width = merged, start, width
}

// floorTo rounds ns down to a multiple of width.
func floorTo(ns, width int64) int64 {
	q := ns / width
	if ns%width < 0 {
		q--
	}
	return q * width
}

// Timeline is the flows by verdict over time: bars of equal width, from the
// first bucket that saw a flow to the last.
type Timeline struct {
	Start time.Time
	Width time.Duration
	// Counts are the flows that started in each bucket, by verdict
	// (indexed by classifier.Verdict).
	Counts [][classifier.NumVerdicts]uint64
}

// End is the end of the last bucket.
func (t *Timeline) End() time.Time { return t.Start.Add(time.Duration(len(t.Counts)) * t.Width) }

// view returns the buckets that saw flows, and those between them.
func (t *timeline) view() Timeline {
	first, last := -1, -1
	for i := range t.counts {
		for _, n := range t.counts[i] {
			if n > 0 {
				if first < 0 {
					first = i
				}
				last = i
				break
			}
		}
	}
	if first < 0 {
		return Timeline{}
	}
	out := Timeline{Start: time.Unix(0, t.start+int64(first)*t.width).UTC(), Width: time.Duration(t.width)}
	out.Counts = append(out.Counts, t.counts[first:last+1]...)
	return out
}
