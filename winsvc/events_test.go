package winsvc

import (
	"strings"
	"testing"
)

func TestEventWriterPassesLifecycleAndErrorsOnly(t *testing.T) {
	cases := []struct {
		line string
		want string // "" when nothing reaches the Event Log
	}{
		{`{"level":"info","interfaces":["Ethernet0"],"message":"tpwatch running"}`, "1 info tpwatch running"},
		{`{"level":"info","interface":"Ethernet0","message":"capturing"}`, "10 info capturing"},
		{`{"level":"warn","error":"open Ethernet9: no such interface","interface":"Ethernet9","message":"cannot open interface; will retry"}`, "11 warning cannot open interface; will retry"},
		{`{"level":"error","error":"read: adapter removed","message":"capture failed; reopening"}`, "11 warning capture failed; reopening"},
		{`{"level":"info","rules":38,"message":"config reloaded"}`, "20 info config reloaded"},
		{`{"level":"error","error":"site.yaml:2:3: unknown role","message":"config reload failed: cannot load it; the previous config stays in force"}`, "21 error config reload failed: cannot load it; the previous config stays in force"},
		{`{"level":"error","error":"accept: closed","message":"metrics endpoint stopped"}`, "30 error metrics endpoint stopped"},
		{`{"level":"info","message":"stopping: flushing the flow tables"}`, "2 info stopping: flushing the flow tables"},
		{`{"level":"info","message":"stopped"}`, "3 info stopped"},
		{`{"level":"error","interface":"Ethernet0","message":"capture filter not changed on this interface"}`, "40 error capture filter not changed on this interface"},
		// Flow events, summaries and ordinary information stay in the file.
		{`{"level":"warn","verdict":"blocked","message":"blocked flow"}`, ""},
		{`{"level":"error","verdict":"unexpected","message":"unexpected flow"}`, ""},
		{`{"level":"warn","suppressed":5,"message":"suppressed 5 flow log events over the log rate limit"}`, ""},
		{`{"level":"info","message":"flushed the flow table"}`, ""},
		{`not json`, ""},
	}
	for _, c := range cases {
		ev := &events{}
		n, err := EventWriter{Sink: ev}.Write([]byte(c.line + "\n"))
		if err != nil || n != len(c.line)+1 {
			t.Errorf("Write(%s) = %d, %v", c.line, n, err)
		}
		got := strings.Join(ev.list(), "|")
		if got != c.want {
			t.Errorf("%s\n  gave %q, want %q", c.line, got, c.want)
		}
	}
}

func TestEventTextListsTheFields(t *testing.T) {
	var full string
	sink := sinkFunc(func(id uint32, sev Severity, msg string) { full = msg })
	EventWriter{Sink: sink}.Write([]byte(`{"level":"warn","time":"2026-01-01T00:00:00Z","error":"open Ethernet9: no such interface","interface":"Ethernet9","retry_in":"2s","message":"cannot open interface; retrying"}`))
	want := "cannot open interface; retrying\nerror: open Ethernet9: no such interface\ninterface: Ethernet9\nretry_in: 2s"
	if full != want {
		t.Errorf("event text %q, want %q", full, want)
	}
}

type sinkFunc func(id uint32, sev Severity, msg string)

func (f sinkFunc) Event(id uint32, sev Severity, msg string) { f(id, sev, msg) }
