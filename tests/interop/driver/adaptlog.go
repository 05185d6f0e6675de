package main

// The adaptation's log: everything it logs through pkg/log, and everything
// ttrpc logs through logrus, in one recorder; the rules every scenario
// checks it against.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"sync"
	"time"

	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/sirupsen/logrus"
)

// ---------------------------------------------------------------------------
// Log capture: everything the adaptation logs through pkg/log, and everything
// ttrpc logs through logrus, lands in one recorder.

type logLine struct {
	seq   int
	at    time.Time
	level string // debug, info, warning, error, ...
	src   string // "nri" or "logrus"
	msg   string
}

func (l logLine) String() string {
	return fmt.Sprintf("%s %-7s [%s] %s", l.at.Format("15:04:05.000"), l.level, l.src, l.msg)
}

type recorder struct {
	mu      sync.Mutex
	lines   []logLine
	verbose bool
}

var logs = &recorder{}

func (r *recorder) add(level, src, msg string) {
	r.mu.Lock()
	l := logLine{seq: len(r.lines), at: time.Now(), level: level, src: src, msg: msg}
	r.lines = append(r.lines, l)
	verbose := r.verbose
	r.mu.Unlock()
	if verbose {
		fmt.Fprintf(os.Stderr, "    | %s\n", l)
	}
}

func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lines)
}

func (r *recorder) since(i int) []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i > len(r.lines) {
		i = len(r.lines)
	}
	return append([]logLine(nil), r.lines[i:]...)
}

// nri pkg/log.Logger
func (r *recorder) Debugf(_ context.Context, f string, a ...interface{}) {
	r.add("debug", "nri", fmt.Sprintf(f, a...))
}
func (r *recorder) Infof(_ context.Context, f string, a ...interface{}) {
	r.add("info", "nri", fmt.Sprintf(f, a...))
}
func (r *recorder) Warnf(_ context.Context, f string, a ...interface{}) {
	r.add("warning", "nri", fmt.Sprintf(f, a...))
}
func (r *recorder) Errorf(_ context.Context, f string, a ...interface{}) {
	r.add("error", "nri", fmt.Sprintf(f, a...))
}

// logrus hook (ttrpc logs through containerd/log, i.e. logrus).
type logrusHook struct{ r *recorder }

func (h logrusHook) Levels() []logrus.Level { return logrus.AllLevels }
func (h logrusHook) Fire(e *logrus.Entry) error {
	msg := e.Message
	if len(e.Data) > 0 {
		keys := make([]string, 0, len(e.Data))
		for k := range e.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			msg += fmt.Sprintf(" %s=%v", k, e.Data[k])
		}
	}
	h.r.add(e.Level.String(), "logrus", msg)
	return nil
}

func installLoggers(verbose bool) {
	logs.verbose = verbose
	nrilog.Set(logs)
	logrus.SetOutput(discard{})
	logrus.SetLevel(logrus.DebugLevel)
	logrus.AddHook(logrusHook{logs})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Lines that reveal a plugin connection problem or a plugin being dropped.
var dropPatterns = []*regexp.Regexp{
	regexp.MustCompile(`connection to plugin .* closed`),
	regexp.MustCompile(`closing plugin`),
	regexp.MustCompile(`failed to synchronize`),
	regexp.MustCompile(`ttrpc server for plugin .* closed`),
	regexp.MustCompile(`failed to (create|start) external plugin`),
	regexp.MustCompile(`failed to (initialize|start) pre-installed`),
	regexp.MustCompile(`registration timed out`),
	regexp.MustCompile(`does not handle split sync`),
}

// Lines that reveal a plugin served through the deprecated StateChange
// fallback (the v0.12 adaptations log them as warnings when the runtime
// has no deprecation recorder).
var deprecationPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)deprecated`),
	regexp.MustCompile(`with a newer version of NRI`),
}

// anyLineMatches reports whether one of lines matches re.
func anyLineMatches(lines []logLine, re *regexp.Regexp) bool {
	for _, l := range lines {
		if re.MatchString(l.msg) {
			return true
		}
	}
	return false
}

// unexpectedLogLine returns the first suspicious line in lines, if any.
func unexpectedLogLine(lines []logLine) (logLine, bool) {
	return unexpectedLogLineExcept(lines, nil)
}

// unexpectedLogLineExcept is unexpectedLogLine ignoring the lines that match
// one of allowed.
func unexpectedLogLineExcept(lines []logLine, allowed []*regexp.Regexp) (logLine, bool) {
next:
	for _, l := range lines {
		for _, re := range allowed {
			if re.MatchString(l.msg) {
				continue next
			}
		}
		switch l.level {
		case "warning", "error", "fatal", "panic":
			return l, true
		}
		for _, re := range dropPatterns {
			if re.MatchString(l.msg) {
				return l, true
			}
		}
		for _, re := range deprecationPatterns {
			if re.MatchString(l.msg) {
				return l, true
			}
		}
	}
	return logLine{}, false
}

// ---------------------------------------------------------------------------
// The lines the adaptation logs when a plugin fails, by version: what a
// scenario that provokes a failure expects (h.expectLog) or allows
// (h.allowLog), so that any other warning or error still fails it.

// connectionClosedLine is logged when a plugin's connection closes.
func connectionClosedLine(plugin string) string {
	return regexp.QuoteMeta(fmt.Sprintf("connection to plugin %q closed", plugin))
}

// closingLine is logged when a request to the plugin fails fatally (timeout,
// closed connection, protocol error) and the adaptation closes the plugin.
// cause is a regexp.
func closingLine(plugin, request, cause string) string {
	return regexp.QuoteMeta(fmt.Sprintf("closing plugin %s, failed to handle %s request: ", plugin, request)) + cause
}

// proceedingLine is logged from v0.12.4 on when a request proceeds without
// a plugin that failed it fatally (a plugin without the fail_request
// policy). cause is a regexp.
func proceedingLine(plugin, request, cause string) string {
	return regexp.QuoteMeta(fmt.Sprintf("plugin %s failed to handle %s request, proceeding without it: ", plugin, request)) + cause
}

// logsProceeding reports whether the adaptation logs proceedingLine (the
// failure policy code of v0.12.4 and newer).
func logsProceeding() bool { return atLeast(adaptationVersion, "v0.12.4") }

// validatorClosingLine is logged when a validation request fails fatally:
// v0.10 and v0.11 word it apart from the other requests.
func validatorClosingLine(plugin, cause string) string {
	if !atLeast(adaptationVersion, "v0.12.0") {
		return regexp.QuoteMeta(fmt.Sprintf("closing plugin %s, failed to validate request: ", plugin)) + cause
	}
	return closingLine(plugin, "ValidateContainerAdjustment", cause)
}

// expectFatalFailure expects the lines of a request to plugin failing
// fatally with cause (a regexp): the plugin is closed, and from v0.12.4 on
// the request proceeds without it unless its policy is fail_request.
func (h *H) expectFatalFailure(plugin, request, cause string, failRequest bool) {
	h.expectLog(closingLine(plugin, request, cause))
	if logsProceeding() && !failRequest {
		h.expectLog(proceedingLine(plugin, request, cause))
	}
}

// registeredRE matches the v0.12 registration line; before v0.12 the line
// ends after the name.
var registeredRE = regexp.MustCompile(`registered as "([^"]*)" \(with NRI version ([^)]*)\)`)

// checkRegistrations fails when a registration line (v0.12 and newer)
// shows an NRI version other than the one the plugin announces: "unknown"
// for a plugin built on an API before v0.12 (which cannot send one), else
// the plugin's own version.
func (h *H) checkRegistrations() error {
	if !atLeast(adaptationVersion, "v0.12.0") {
		return nil
	}
	for _, l := range logs.since(h.logStart) {
		m := registeredRE.FindStringSubmatch(l.msg)
		if m == nil {
			continue
		}
		name, got := m[1], m[2]
		h.mu.Lock()
		want, known := h.announces[name]
		h.mu.Unlock()
		switch {
		case !known && got == "unknown":
			return fmt.Errorf("plugin %s registered with NRI version unknown: %s", name, l.msg)
		case known && got != want:
			return fmt.Errorf("plugin %s registered with NRI version %s, want %s: %s", name, got, want, l.msg)
		}
	}
	return nil
}
