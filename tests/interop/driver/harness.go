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
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

// ---------------------------------------------------------------------------
// Per-scenario harness.

type H struct {
	name      string
	plugin    string // -plugin
	plugin2   string // -plugin2 (or "")
	verbose   bool
	dir       string
	sock      string
	pluginDir string
	confDir   string
	a         *adaptation.Adaptation
	logStart  int
	procs     []*proc
	cleanups  []func()

	mu          sync.Mutex
	pods        []*api.PodSandbox
	ctrs        []*api.Container
	syncUpdates [][]*api.ContainerUpdate
	unsolicited chan []*api.ContainerUpdate
	failUpdates bool
	// announces maps a plugin's full name to the NRI version its
	// registration must show on v0.12 adaptations
	announces map[string]string
	// deprecations recorded by the adaptation (v0.12 and newer)
	deprecations      []string
	allowDeprecations bool
	// noRecorder: start the adaptation without a deprecation recorder (v0.12
	// then logs deprecations as warnings)
	noRecorder bool
	// log lines the scenario provokes on purpose: allowed ones may appear,
	// expected ones must (each pattern matches whole lines)
	allowLines  []*regexp.Regexp
	expectLines []*regexp.Regexp
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
		announces:   map[string]string{},
	}
	for _, d := range []string{h.pluginDir, h.confDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *H) path(name string) string { return filepath.Join(h.dir, name) }

// allowLog tells the log check that whole lines matching re may appear:
// the scenario provokes them on purpose, but whether they show before the
// final check depends on timing. re is anchored at both ends.
func (h *H) allowLog(re string) { h.allowLines = append(h.allowLines, wholeLine(re)) }

// expectLog tells the log check that whole lines matching re are provoked
// on purpose and must appear before the final check. re is anchored at both
// ends.
func (h *H) expectLog(re string) { h.expectLines = append(h.expectLines, wholeLine(re)) }

// wholeLine compiles re to match whole log lines only.
func wholeLine(re string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + re + `)$`) }

func (h *H) recordDeprecation(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deprecations = append(h.deprecations, what)
}

func (h *H) getDeprecations() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.deprecations...)
}

// nriOf is the NRI version of the API the plugin binary bin is built on.
func (h *H) nriOf(bin string) string {
	switch bin {
	case h.plugin:
		return opts.pluginNRI
	case h.plugin2:
		return opts.plugin2NRI
	case opts.legacyPlugin:
		return "v0.9.0"
	}
	return opts.pluginNRI
}

// hasAdditions reports whether the plugin binary implements the contract's
// NRI v0.10+ additions (it is built on an API of v0.10 or newer).
func (h *H) hasAdditions(bin string) bool { return atLeast(h.nriOf(bin), "v0.10.0") }

// validates reports whether the plugin binary, configured with its default
// events, is a validator here: it handles ValidateContainerAdjustment and
// the adaptation can send it.
func (h *H) validates(bin string) bool {
	return h.hasAdditions(bin) && atLeast(adaptationVersion, "v0.10.0")
}

// v09Events is the mask of the 11 events of NRI v0.9.
const v09Events = api.EventMask(0x7ff)

// handledMask is the subscription a plugin binary with its default
// configuration ends up with here: every event the adaptation knows, less
// the v0.10+ events for a plugin without the contract's v0.10+ additions.
func (h *H) handledMask(bin string) api.EventMask {
	if h.hasAdditions(bin) {
		return api.ValidEvents
	}
	return api.ValidEvents & v09Events
}

// deadValidatorFails reports whether a CreateContainer that finds the
// plugin binary's plugin dropped or dead fails here: the v0.10 to v0.12.4
// adaptations still send the validation request to a validator closed
// earlier in the same request (or before it), which fails the creation
// ("validator plugin NN-name failed: ttrpc: closed"); v0.12.5 skips closed
// plugins.
func (h *H) deadValidatorFails(bin string) bool {
	return h.validates(bin) && !skipsClosedPlugins()
}

// skipsClosedPlugins reports whether the adaptation skips a plugin closed
// earlier (dead, or dropped by an earlier request) instead of relaying the
// next request to it: v0.12.5 and newer.
func skipsClosedPlugins() bool { return atLeast(adaptationVersion, "v0.12.5") }

// wantConfigureNRI is the nri= value the plugin's Configure line must show,
// or "" when the plugin logs none (no v0.10+ additions).
func (h *H) wantConfigureNRI(bin string) string {
	v := h.nriOf(bin)
	switch {
	case !atLeast(v, "v0.10.0"):
		return ""
	case !atLeast(v, "v0.12.0"):
		// a v0.10/v0.11 stub neither receives nor infers a version
		return "-"
	case atLeast(adaptationVersion, "v0.12.0"):
		return adaptationVersion // sent in Configure
	default:
		return inferredNRI // inferred from the runtime's name and version
	}
}

// expectPlugin records what registration of the plugin fullName (binary
// bin) must announce.
func (h *H) expectPlugin(bin, fullName string) {
	want := "unknown"
	if v := h.nriOf(bin); atLeast(v, "v0.12.0") {
		want = v
	}
	h.mu.Lock()
	h.announces[fullName] = want
	h.mu.Unlock()
}

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
	options := append([]adaptation.Option{
		adaptation.WithSocketPath(h.sock),
		adaptation.WithPluginPath(h.pluginDir),
		adaptation.WithPluginConfigPath(h.confDir),
	}, versionOptions(h)...)
	a, err := adaptation.New(runtimeName, runtimeVersion, h.syncFn, h.updateFn, options...)
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
	h.expectPlugin(bin, fullName)
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
	h.expectPlugin(bin, p.name)
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
	// failure policy (v0.12.4+): whether the plugin sent one, and its flags
	hasPolicy, failRequest, keepConnected bool
}

// withPlugins calls fn with each entry of the adaptation's plugin list (the
// plugin struct, addressable, under the plugin's own lock), holding the
// adaptation's lock.
func (h *H) withPlugins(fn func(p reflect.Value)) error {
	if h.a == nil {
		return errors.New("adaptation not started")
	}
	deadline := time.Now().Add(3 * time.Second)
	for !h.a.TryLock() {
		if time.Now().After(deadline) {
			return errors.New("adaptation lock busy for 3s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer h.a.Unlock()

	field := reflect.ValueOf(h.a).Elem().FieldByName("plugins")
	list := reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem()
	for i := 0; i < list.Len(); i++ {
		pv := list.Index(i)
		locker, _ := pv.Interface().(sync.Locker)
		if locker != nil {
			locker.Lock()
		}
		p := pv.Elem()
		fn(reflect.NewAt(p.Type(), unsafe.Pointer(p.UnsafeAddr())).Elem())
		if locker != nil {
			locker.Unlock()
		}
	}
	return nil
}

// pluginName is the "NN-base" name of an entry of the plugin list.
func pluginName(p reflect.Value) string {
	return p.FieldByName("idx").String() + "-" + p.FieldByName("base").String()
}

func (h *H) plugins() ([]pluginInfo, error) {
	var out []pluginInfo
	err := h.withPlugins(func(p reflect.Value) {
		cmd := p.FieldByName("cmd")
		info := pluginInfo{
			name:     pluginName(p),
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
		// v0.12.4+: policy *FailurePolicy (nil: no policy sent)
		if pol := p.FieldByName("policy"); pol.IsValid() && !pol.IsNil() {
			info.hasPolicy = true
			info.failRequest = pol.Elem().FieldByName("FailRequest").Bool()
			info.keepConnected = pol.Elem().FieldByName("KeepConnected").Bool()
		}
		out = append(out, info)
	})
	return out, err
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
