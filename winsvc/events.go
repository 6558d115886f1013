package winsvc

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Severity is an Event Log entry's type.
type Severity uint8

const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "info"
}

// Event IDs of the Event Log entries, stable so that monitoring can key on
// them. Install registers the source with EventCreate.exe as its message
// file, which shows the text of any ID from 1 to 1000.
const (
	EventStarted       uint32 = 1  // the monitor runs
	EventStopping      uint32 = 2  // a stop was asked for; flushing the flow tables
	EventStopped       uint32 = 3  // stopped cleanly
	EventFailed        uint32 = 4  // could not start, stopped on an error, or did not stop in time
	EventCaptureUp     uint32 = 10 // an interface is capturing
	EventCaptureDown   uint32 = 11 // an interface cannot open or failed (with Npcap's error); retried
	EventReloaded      uint32 = 20 // the config was reloaded
	EventReloadFailed  uint32 = 21 // a reload failed; the previous config stays in force
	EventMetricsFailed uint32 = 30 // the metrics endpoint stopped
	EventOtherError    uint32 = 40 // any other error the log reports
)

// EventSink writes Event Log entries (the Windows Event Log, or a fake in
// tests).
type EventSink interface {
	Event(id uint32, sev Severity, msg string)
}

// lifecycle maps the daemon's log messages to Event Log entries. A
// message is matched whole, or by its prefix where it carries a detail.
var lifecycle = []struct {
	msg    string
	prefix bool
	id     uint32
	sev    Severity
}{
	{"tpwatch running", false, EventStarted, Info},
	{"stopping: flushing the flow tables", false, EventStopping, Info},
	{"stopped", false, EventStopped, Info},
	{"capturing", false, EventCaptureUp, Info},
	{"cannot open interface", true, EventCaptureDown, Warning},
	{"capture failed", true, EventCaptureDown, Warning},
	{"config reloaded", false, EventReloaded, Info},
	{"reload: no --config or --matrix to read again", false, EventReloaded, Info},
	{"config reload failed", true, EventReloadFailed, Error},
	{"metrics endpoint stopped", false, EventMetricsFailed, Error},
}

// EventWriter is an io.Writer for the daemon's JSON log (zerolog writes
// one event per Write) that passes its lifecycle events, and any other
// error, to an EventSink. Flow events (blocked and unexpected flows) never
// go there. It never fails a write: the log file beside it is the record.
type EventWriter struct {
	Sink EventSink
}

// Write forwards p to the sink if it is a lifecycle event or an error.
func (w EventWriter) Write(p []byte) (int, error) {
	var ev map[string]any
	if json.Unmarshal(p, &ev) != nil {
		return len(p), nil
	}
	msg, _ := ev["message"].(string)
	level, _ := ev["level"].(string)
	if strings.HasSuffix(msg, " flow") || strings.HasPrefix(msg, "suppressed") {
		return len(p), nil
	}
	id, sev, ok := EventOtherError, Error, level == "error" || level == "fatal"
	for _, l := range lifecycle {
		if msg == l.msg || l.prefix && strings.HasPrefix(msg, l.msg) {
			id, sev, ok = l.id, l.sev, true
			break
		}
	}
	if ok {
		w.Sink.Event(id, sev, eventText(msg, ev))
	}
	return len(p), nil
}

// eventText is the message followed by the event's fields, one a line,
// in name order: what a person reads in the Event Viewer.
func eventText(msg string, ev map[string]any) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		if k != "message" && k != "level" && k != "time" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(msg)
	for _, k := range keys {
		v := ev[k]
		switch x := v.(type) {
		case string:
			fmt.Fprintf(&b, "\n%s: %s", k, x)
		default:
			j, _ := json.Marshal(x)
			fmt.Fprintf(&b, "\n%s: %s", k, j)
		}
	}
	return b.String()
}
