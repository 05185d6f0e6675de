package main

// The plugins' request logs (the contract's log file): parsing and checks.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ---------------------------------------------------------------------------
// Plugin request logs (the contract's log file).

type entry struct {
	prefix string
	event  string
	kv     map[string]string
	raw    string
}

func (e entry) String() string { return e.raw }

var logEvents = map[string]bool{
	"Configure": true, "Synchronize": true, "RunPodSandbox": true, "StopPodSandbox": true,
	"RemovePodSandbox": true, "CreateContainer": true, "PostCreateContainer": true,
	"StartContainer": true, "PostStartContainer": true, "UpdateContainer": true,
	"PostUpdateContainer": true, "StopContainer": true, "RemoveContainer": true,
	"Unsolicited": true, "UpdatePodSandbox": true, "PostUpdatePodSandbox": true,
	"ValidateContainerAdjustment": true, "Fields": true,
}

func parseEntry(line string) (entry, error) {
	e := entry{raw: line, kv: map[string]string{}}
	rest := line
	word, after, _ := strings.Cut(rest, " ")
	if !logEvents[word] {
		e.prefix = word
		rest = after
		word, after, _ = strings.Cut(rest, " ")
	}
	if !logEvents[word] {
		return e, fmt.Errorf("unknown event in log line %q", line)
	}
	e.event = word
	rest = after
	for rest != "" {
		var tok string
		if strings.HasPrefix(rest, "err=") {
			tok, rest = rest, ""
		} else {
			tok, rest, _ = strings.Cut(rest, " ")
		}
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return e, fmt.Errorf("malformed field %q in log line %q", tok, line)
		}
		e.kv[k] = v
	}
	return e, nil
}

func readLog(path string) ([]entry, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []entry
	text := string(buf)
	if text != "" && !strings.HasSuffix(text, "\n") {
		// a partially written line: ignore it until it is complete
		text = text[:strings.LastIndex(text, "\n")+1]
	}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// waitEntries polls the log until pred holds.
func waitEntries(path string, timeout time.Duration, what string, pred func([]entry) bool) ([]entry, error) {
	deadline := time.Now().Add(timeout)
	for {
		es, err := readLog(path)
		if err != nil {
			return es, err
		}
		if pred(es) {
			return es, nil
		}
		if time.Now().After(deadline) {
			return es, fmt.Errorf("plugin log %s: %s not seen within %v (log: %s)",
				filepath.Base(path), what, timeout, summarize(es))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func summarize(es []entry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, trunc(e.raw, 80))
	}
	s := strings.Join(parts, " | ")
	return "[" + trunc(s, 600) + "]"
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

// eventLines drops Configure, Synchronize, Unsolicited, Fields and
// ValidateContainerAdjustment entries (a plugin with the v0.10+ additions
// is a validator by default on v0.10+ adaptations: the scenarios about
// validation check those lines themselves).
func eventLines(es []entry) []entry {
	var out []entry
	for _, e := range es {
		switch e.event {
		case "Configure", "Synchronize", "Unsolicited", "Fields", "ValidateContainerAdjustment":
			continue
		}
		out = append(out, e)
	}
	return out
}

func filterEvent(es []entry, event string) []entry {
	var out []entry
	for _, e := range es {
		if e.event == event {
			out = append(out, e)
		}
	}
	return out
}

// expectLine is "Event pod ctr" for event lines.
type expectLine struct {
	event, pod, ctr string
}

func checkEventSeq(es []entry, want []expectLine) error {
	got := eventLines(es)
	n := len(got)
	if len(want) > n {
		n = len(want)
	}
	for i := 0; i < n; i++ {
		if i >= len(got) {
			return fmt.Errorf("plugin log: line %d missing, want %s pod=%s ctr=%s (log: %s)",
				i+1, want[i].event, want[i].pod, want[i].ctr, summarize(got))
		}
		if i >= len(want) {
			return fmt.Errorf("plugin log: unexpected extra line %q (log: %s)", got[i].raw, summarize(got))
		}
		g, w := got[i], want[i]
		if g.event != w.event || g.kv["pod"] != w.pod || g.kv["ctr"] != w.ctr {
			return fmt.Errorf("plugin log: line %d is %q, want \"%s pod=%s ctr=%s\" (log: %s)",
				i+1, g.raw, w.event, w.pod, w.ctr, summarize(got))
		}
	}
	return nil
}

// checkLines checks that the plugin log's lines of one event are exactly
// want (raw lines, in order).
func checkLines(es []entry, event string, want []string) error {
	got := filterEvent(es, event)
	var raw []string
	for _, e := range got {
		raw = append(raw, e.raw)
	}
	if strings.Join(raw, "\n") != strings.Join(want, "\n") {
		return fmt.Errorf("plugin log: %s lines %q, want %q", event, raw, want)
	}
	return nil
}

// checkOrder checks that the first lines of the given events appear in the
// plugin log in that order.
func checkOrder(es []entry, events ...string) error {
	last := -1
	for n, ev := range events {
		at := -1
		for i, e := range es {
			if e.event == ev {
				at = i
				break
			}
		}
		if at < 0 {
			return fmt.Errorf("plugin log: no %s line (log: %s)", ev, summarize(es))
		}
		if at < last {
			return fmt.Errorf("plugin log: the first %s comes before the first %s, want the order %v (log: %s)",
				ev, events[n-1], events, summarize(es))
		}
		last = at
	}
	return nil
}
