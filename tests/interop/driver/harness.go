package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/sirupsen/logrus"
)

const (
	runtimeName    = "interop-runtime"
	runtimeVersion = "v0.9.0"
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

// unexpectedLogLine returns the first suspicious line in lines, if any.
func unexpectedLogLine(lines []logLine) (logLine, bool) {
	for _, l := range lines {
		switch l.level {
		case "warning", "error", "fatal", "panic":
			return l, true
		}
		for _, re := range dropPatterns {
			if re.MatchString(l.msg) {
				return l, true
			}
		}
	}
	return logLine{}, false
}

// ---------------------------------------------------------------------------
// Per-scenario harness.

type H struct {
	name       string
	plugin     string // -plugin
	plugin2    string // -plugin2 (or "")
	verbose    bool
	dir        string
	sock       string
	pluginDir  string
	confDir    string
	a          *adaptation.Adaptation
	logStart   int
	allowDrops bool
	procs      []*proc
	cleanups   []func()

	mu          sync.Mutex
	pods        []*api.PodSandbox
	ctrs        []*api.Container
	syncUpdates [][]*api.ContainerUpdate
	unsolicited chan []*api.ContainerUpdate
	failUpdates bool
}

func newH(name, plugin, plugin2 string, verbose bool) (*H, error) {
	dir, err := os.MkdirTemp("", "nri-interop-")
	if err != nil {
		return nil, err
	}
	h := &H{
		name:        name,
		plugin:      plugin,
		plugin2:     plugin2,
		verbose:     verbose,
		dir:         dir,
		sock:        filepath.Join(dir, "nri.sock"),
		pluginDir:   filepath.Join(dir, "plugins"),
		confDir:     filepath.Join(dir, "conf.d"),
		unsolicited: make(chan []*api.ContainerUpdate, 16),
		logStart:    logs.mark(),
	}
	for _, d := range []string{h.pluginDir, h.confDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *H) path(name string) string { return filepath.Join(h.dir, name) }

// expectDrops tells the log check that plugin drops/closures are expected.
func (h *H) expectDrops() { h.allowDrops = true }

func (h *H) setState(pods []*api.PodSandbox, ctrs []*api.Container) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pods, h.ctrs = pods, ctrs
}

func (h *H) syncFn(ctx context.Context, cb adaptation.SyncCB) error {
	h.mu.Lock()
	pods, ctrs := h.pods, h.ctrs
	h.mu.Unlock()
	updates, err := cb(ctx, pods, ctrs)
	h.mu.Lock()
	h.syncUpdates = append(h.syncUpdates, updates)
	h.mu.Unlock()
	return err
}

func (h *H) getSyncUpdates() [][]*api.ContainerUpdate {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]*api.ContainerUpdate(nil), h.syncUpdates...)
}

func (h *H) updateFn(_ context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	h.mu.Lock()
	fail := h.failUpdates
	h.mu.Unlock()
	select {
	case h.unsolicited <- updates:
	default:
	}
	if fail {
		return updates, nil
	}
	return nil, nil
}

// start creates and starts the adaptation (launching pre-installed plugins).
func (h *H) start() error {
	a, err := adaptation.New(runtimeName, runtimeVersion, h.syncFn, h.updateFn,
		adaptation.WithSocketPath(h.sock),
		adaptation.WithPluginPath(h.pluginDir),
		adaptation.WithPluginConfigPath(h.confDir),
	)
	if err != nil {
		return fmt.Errorf("adaptation.New: %w", err)
	}
	h.a = a
	if err := a.Start(); err != nil {
		return fmt.Errorf("adaptation.Start: %w", err)
	}
	return nil
}

// installLaunched puts bin into the plugin dir as NN-name (a symlink) and,
// if cfg is not empty, writes conf.d/NN-name.conf.
func (h *H) installLaunched(bin, fullName, cfg string) error {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if err := os.Symlink(abs, filepath.Join(h.pluginDir, fullName)); err != nil {
		return err
	}
	if cfg != "" {
		return os.WriteFile(filepath.Join(h.confDir, fullName+".conf"), []byte(cfg), 0o644)
	}
	return nil
}

// ---------------------------------------------------------------------------
// External plugin processes.

type proc struct {
	name  string
	cmd   *exec.Cmd
	out   string
	doneC chan struct{}
	err   error
}

func (p *proc) exited() bool {
	select {
	case <-p.doneC:
		return true
	default:
		return false
	}
}

func (p *proc) waitExit(timeout time.Duration) bool {
	select {
	case <-p.doneC:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (p *proc) kill() {
	if p.cmd.Process != nil && !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// runExternal starts bin as an external plugin connecting to our socket.
// cfg, when not empty, is written to a file passed with -config.
// extra arguments are appended to the command line.
func (h *H) runExternal(bin, name, idx, cfg string, extra ...string) (*proc, error) {
	args := []string{"-socket", h.sock, "-name", name, "-idx", idx}
	if cfg != "" {
		cfgPath := h.path(idx + "-" + name + ".cfg")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "-config", cfgPath)
	}
	args = append(args, extra...)
	out := h.path(idx + "-" + name + ".out")
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{name: idx + "-" + name, cmd: cmd, out: out, doneC: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.doneC)
	}()
	h.procs = append(h.procs, p)
	return p, nil
}

// external starts an external plugin and waits until the adaptation lists it.
func (h *H) external(bin, name, idx, cfg string, extra ...string) (*proc, error) {
	p, err := h.runExternal(bin, name, idx, cfg, extra...)
	if err != nil {
		return nil, err
	}
	if err := h.waitRegistered(idx+"-"+name, 5*time.Second, p); err != nil {
		return p, err
	}
	return p, nil
}

// ---------------------------------------------------------------------------
// The adaptation's plugin list. v0.9.0 has no public accessor, so we read the
// unexported field Adaptation.plugins (under the adaptation's own lock).

type pluginInfo struct {
	name     string // "NN-base"
	external bool
	closed   bool
	pid      int
	events   api.EventMask
}

func (h *H) plugins() ([]pluginInfo, error) {
	if h.a == nil {
		return nil, errors.New("adaptation not started")
	}
	deadline := time.Now().Add(3 * time.Second)
	for !h.a.TryLock() {
		if time.Now().After(deadline) {
			return nil, errors.New("adaptation lock busy for 3s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer h.a.Unlock()

	field := reflect.ValueOf(h.a).Elem().FieldByName("plugins")
	list := reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem()
	var out []pluginInfo
	for i := 0; i < list.Len(); i++ {
		pv := list.Index(i)
		locker, _ := pv.Interface().(sync.Locker)
		if locker != nil {
			locker.Lock()
		}
		p := pv.Elem()
		cmd := p.FieldByName("cmd")
		info := pluginInfo{
			name:     p.FieldByName("idx").String() + "-" + p.FieldByName("base").String(),
			external: cmd.IsNil(),
			closed:   p.FieldByName("closed").Bool(),
			pid:      int(p.FieldByName("pid").Int()),
			events:   api.EventMask(p.FieldByName("events").Int()),
		}
		// For launched plugins the adaptation's pid (SO_PEERCRED of its own
		// socketpair) is the runtime's own pid: use the child's instead.
		if !info.external {
			info.pid = 0
			if proc := cmd.Elem().FieldByName("Process"); !proc.IsNil() {
				info.pid = int(proc.Elem().FieldByName("Pid").Int())
			}
		}
		if locker != nil {
			locker.Unlock()
		}
		out = append(out, info)
	}
	return out, nil
}

// activePlugins lists the names of plugins not closed, in invocation order.
func (h *H) activePlugins() ([]string, error) {
	list, err := h.plugins()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range list {
		if !p.closed {
			names = append(names, p.name)
		}
	}
	return names, nil
}

func (h *H) findPlugin(name string) (pluginInfo, bool, error) {
	list, err := h.plugins()
	if err != nil {
		return pluginInfo{}, false, err
	}
	for _, p := range list {
		if p.name == name && !p.closed {
			return p, true, nil
		}
	}
	return pluginInfo{}, false, nil
}

// mustBeRegistered fails unless the plugin is listed and not closed.
func (h *H) mustBeRegistered(name string) error {
	_, ok, err := h.findPlugin(name)
	if err != nil {
		return err
	}
	if !ok {
		names, _ := h.activePlugins()
		return fmt.Errorf("plugin %s is no longer registered (active plugins: %v)", name, names)
	}
	return nil
}

// waitRegistered waits until the adaptation lists the plugin as active; it
// gives up early when p (if not nil) exits.
func (h *H) waitRegistered(name string, timeout time.Duration, p *proc) error {
	deadline := time.Now().Add(timeout)
	for {
		_, ok, err := h.findPlugin(name)
		if err == nil && ok {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("plugin %s exited before registering (%v); see -v for its output", name, p.err)
		}
		if time.Now().After(deadline) {
			names, _ := h.activePlugins()
			return fmt.Errorf("plugin %s not registered within %v (active plugins: %v)", name, timeout, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLogMsg waits until the adaptation log (this scenario) has a line matching re.
func (h *H) waitLogMsg(re *regexp.Regexp, timeout time.Duration) (logLine, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range logs.since(h.logStart) {
			if re.MatchString(l.msg) {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return logLine{}, fmt.Errorf("adaptation never logged /%s/ within %v", re, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *H) countLogMsg(re *regexp.Regexp) int {
	n := 0
	for _, l := range logs.since(h.logStart) {
		if re.MatchString(l.msg) {
			n++
		}
	}
	return n
}

// teardown stops the adaptation, kills every process we started and waits
// (bounded) for the log to go quiet, so that late lines do not leak into the
// next scenario.
func (h *H) teardown() {
	if h.a != nil {
		list, _ := h.plugins()
		done := make(chan struct{})
		go func() { h.a.Stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			// Stop() is stuck (it kills and reaps launched plugins itself);
			// kill the launched plugins we know of by pid.
			for _, p := range list {
				if !p.external && p.pid > 0 && p.pid != os.Getpid() {
					_ = syscall.Kill(p.pid, syscall.SIGKILL)
				}
			}
		}
	}
	for _, p := range h.procs {
		p.kill()
	}
	for _, p := range h.procs {
		p.waitExit(2 * time.Second)
	}
	for _, f := range h.cleanups {
		f()
	}
	// wait for quiet logs: no new line for 100ms, at most 2s
	deadline := time.Now().Add(2 * time.Second)
	last := logs.mark()
	quietSince := time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if m := logs.mark(); m != last {
			last, quietSince = m, time.Now()
		} else if time.Since(quietSince) > 100*time.Millisecond {
			break
		}
	}
	if !h.verbose {
		os.RemoveAll(h.dir)
	}
}

// dumpOutputs prints the plugins' stdout/stderr (for -v on failure).
func (h *H) dumpOutputs() {
	for _, p := range h.procs {
		buf, err := os.ReadFile(p.out)
		if err != nil || len(buf) == 0 {
			continue
		}
		fmt.Fprintf(os.Stderr, "    --- output of %s ---\n", p.name)
		sc := bufio.NewScanner(strings.NewReader(string(buf)))
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(os.Stderr, "    %s\n", trunc(sc.Text(), 300))
		}
	}
}

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
	"Unsolicited": true,
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

// eventLines drops Configure, Synchronize and Unsolicited entries.
func eventLines(es []entry) []entry {
	var out []entry
	for _, e := range es {
		switch e.event {
		case "Configure", "Synchronize", "Unsolicited":
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
