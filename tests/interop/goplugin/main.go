// Command goplugin is the reference implementation of the interop plugin
// contract (see ../README.md), written against the upstream Go stub
// (github.com/containerd/nri pkg/stub). The interop driver runs it to
// validate itself, and next to other implementations of the same contract;
// interop-runtime runs it against this crate's runtime side.
//
// One source tree builds against several NRI versions: this file compiles
// at every version; v09.go holds what a v0.9.0 build lacks (it is also what
// a build without any version tag gets), v010.go the contract's NRI v0.10+
// additions, v011.go what v0.11.0 added to them (v010_fields.go: their
// absence from v0.10.0), and before012.go, v012.go, v0123.go, v0124.go the
// few spots where the newer APIs differ. Build with exactly one of the tags
// nri_v0_9, nri_v0_10, nri_v0_11, nri_v0_12_3, nri_v0_12_4 or nri_v0_12_5,
// and the matching module file (go.mod, go-nri-v0.10.0.mod, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// Annotation keys understood by the contract.
const (
	annAdjust        = "interop/adjust"
	annUpdate        = "interop/update"
	annIgnoreFailure = "interop/ignore-failure"
	annFail          = "interop/fail"
	annSleepMs       = "interop/sleep-ms"
	annReplyBytes    = "interop/reply-bytes"
	annUnsolicited   = "interop/unsolicited"
	annSyncUpdate    = "interop/sync-update"
	annAdjustOmit    = "interop/adjust-omit"
	annFields        = "interop/fields"
)

// errRequested is the error a handler returns for interop/fail=yes.
var errRequested = errors.New("interop: failure requested")

type config struct {
	events    api.EventMask // 0: everything the plugin handles
	logPath   string
	logPrefix string
	tag       string
	// dump is the dump key (v0.10+ builds, for the differential check):
	// the file validation requests are appended to.
	dump string
}

type plugin struct {
	name      string
	fileCfg   string // contents of -config, used when the runtime's config is empty
	stub      stub.Stub
	mu        sync.Mutex
	cfg       config
	logFile   *os.File
	cfgLoaded bool
}

func parseConfig(text, defaultTag string) (config, error) {
	cfg := config{tag: defaultTag}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return cfg, fmt.Errorf("config line %d: missing '=' in %q", n+1, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "events":
			mask, err := api.ParseEventMask(value)
			if err != nil {
				return cfg, fmt.Errorf("config line %d: %w", n+1, err)
			}
			cfg.events = mask
		case "log":
			cfg.logPath = value
		case "log-prefix":
			cfg.logPrefix = value
		case "tag":
			cfg.tag = value
		default:
			// keys of newer contract versions, else ignored
			if err := parseExtraKey(&cfg, key, value); err != nil {
				return cfg, fmt.Errorf("config line %d: %w", n+1, err)
			}
		}
	}
	return cfg, nil
}

// logf appends one line to the request log (if any). Each line is written
// with a single write(2) on an O_APPEND descriptor, so lines of several
// plugins sharing one file never interleave.
func (p *plugin) logf(format string, args ...interface{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logFile == nil {
		return
	}
	line := fmt.Sprintf(format, args...)
	if p.cfg.logPrefix != "" {
		line = p.cfg.logPrefix + " " + line
	}
	_, _ = p.logFile.Write([]byte(line + "\n"))
}

func (p *plugin) tag() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.tag
}

func idOrDash(id string) string {
	if id == "" {
		return "-"
	}
	return id
}

func podID(pod *api.PodSandbox) string {
	if pod == nil {
		return "-"
	}
	return idOrDash(pod.GetId())
}

func ctrID(ctr *api.Container) string {
	if ctr == nil {
		return "-"
	}
	return idOrDash(ctr.GetId())
}

// lookup finds an annotation in the container's annotations first, then in
// the pod's.
func lookup(pod *api.PodSandbox, ctr *api.Container, key string) (string, bool) {
	if ctr != nil {
		if v, ok := ctr.GetAnnotations()[key]; ok {
			return v, true
		}
	}
	if pod != nil {
		if v, ok := pod.GetAnnotations()[key]; ok {
			return v, true
		}
	}
	return "", false
}

// common applies interop/sleep-ms then interop/fail.
func common(pod *api.PodSandbox, ctr *api.Container) error {
	if v, ok := lookup(pod, ctr, annSleepMs); ok {
		if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	}
	if v, _ := lookup(pod, ctr, annFail); v == "yes" {
		return errRequested
	}
	return nil
}

// requestedUpdates returns the interop/update=<ctr id> update, if asked for.
func requestedUpdates(pod *api.PodSandbox, ctr *api.Container) []*api.ContainerUpdate {
	id, ok := lookup(pod, ctr, annUpdate)
	if !ok || id == "" {
		return nil
	}
	u := &api.ContainerUpdate{}
	u.SetContainerId(id)
	u.SetLinuxCPUShares(256)
	if v, _ := lookup(pod, ctr, annIgnoreFailure); v == "yes" {
		u.SetIgnoreFailure()
	}
	return []*api.ContainerUpdate{u}
}

func (p *plugin) Configure(_ context.Context, config, runtime, version string) (api.EventMask, error) {
	text := config
	if strings.TrimSpace(text) == "" {
		text = p.fileCfg
	}
	cfg, err := parseConfig(text, p.name)
	if err != nil {
		return 0, err
	}
	var f *os.File
	if cfg.logPath != "" {
		f, err = os.OpenFile(cfg.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return 0, fmt.Errorf("open log %q: %w", cfg.logPath, err)
		}
	}
	p.mu.Lock()
	if p.logFile != nil {
		p.logFile.Close()
	}
	p.cfg, p.logFile, p.cfgLoaded = cfg, f, true
	p.mu.Unlock()

	p.logf("Configure pod=- ctr=- runtime=%s/%s%s", runtime, version, p.configureSuffix())
	return cfg.events, nil
}

func (p *plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.logf("Synchronize pods=%d containers=%d", len(pods), len(ctrs))
	for _, c := range ctrs {
		if c.GetAnnotations()[annFields] == "yes" {
			p.logFields(c)
		}
	}
	var updates []*api.ContainerUpdate
	for _, c := range ctrs {
		if c.GetAnnotations()[annSyncUpdate] == "yes" {
			u := &api.ContainerUpdate{}
			u.SetContainerId(c.GetId())
			u.SetLinuxCPUShares(384)
			updates = append(updates, u)
		}
	}
	return updates, nil
}

func (p *plugin) Shutdown(_ context.Context) {}

func (p *plugin) podEvent(name string, pod *api.PodSandbox) error {
	p.logf("%s pod=%s ctr=-", name, podID(pod))
	return common(pod, nil)
}

func (p *plugin) ctrEvent(name string, pod *api.PodSandbox, ctr *api.Container) error {
	p.logf("%s pod=%s ctr=%s", name, podID(pod), ctrID(ctr))
	return common(pod, ctr)
}

func (p *plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	return p.podEvent("RunPodSandbox", pod)
}

func (p *plugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	return p.podEvent("StopPodSandbox", pod)
}

func (p *plugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	return p.podEvent("RemovePodSandbox", pod)
}

func (p *plugin) fullAdjustment(a *api.ContainerAdjustment, t string) {
	a.AddAnnotation(t+".interop/added", "yes")
	a.RemoveAnnotation("interop/remove-me")
	a.AddMount(&api.Mount{
		Destination: "/mnt/" + t,
		Type:        "bind",
		Source:      "/tmp/" + t,
		Options:     []string{"rbind", "ro"},
	})
	a.RemoveMount("/mnt/remove-me")
	a.AddEnv("INTEROP_"+t, "yes")
	a.RemoveEnv("REMOVE_ME")
	a.AddHooks(&api.Hooks{
		Prestart: []*api.Hook{{
			Path:    "/bin/" + t + "-prestart",
			Args:    []string{t + "-prestart", "arg"},
			Env:     []string{"HOOK=" + t},
			Timeout: api.Int(5),
		}},
		Poststop: []*api.Hook{{Path: "/bin/" + t + "-poststop"}},
	})
	a.AddRlimit("RLIMIT_NOFILE", 1024, 512)
	a.AddDevice(&api.LinuxDevice{
		Path:     "/dev/" + t + "-dev",
		Type:     "c",
		Major:    1,
		Minor:    3,
		FileMode: api.FileMode(os.FileMode(0o666)),
		Uid:      api.UInt32(uint32(0)),
		Gid:      api.UInt32(uint32(0)),
	})
	a.RemoveDevice("/dev/remove-me")
	a.AddCDIDevice(&api.CDIDevice{Name: "vendor.example/dev=" + t})
	a.SetLinuxMemoryLimit(268435456)
	a.SetLinuxMemoryReservation(134217728)
	a.SetLinuxMemorySwap(536870912)
	a.SetLinuxMemoryKernel(1000000)
	a.SetLinuxMemoryKernelTCP(2000000)
	a.SetLinuxMemorySwappiness(10)
	a.SetLinuxMemoryDisableOomKiller()
	a.SetLinuxMemoryUseHierarchy()
	a.SetLinuxCPUShares(512)
	a.SetLinuxCPUQuota(50000)
	a.SetLinuxCPUPeriod(100000)
	a.SetLinuxCPURealtimeRuntime(1000)
	a.SetLinuxCPURealtimePeriod(2000)
	a.SetLinuxCPUSetCPUs("0-1")
	a.SetLinuxCPUSetMems("0")
	a.AddLinuxHugepageLimit("2MB", 4194304)
	a.SetLinuxBlockIOClass(t + "-blockio")
	a.SetLinuxRDTClass(t + "-rdt")
	a.AddLinuxUnified("memory.high", "1000000")
	a.SetLinuxPidLimits(128)
	a.SetLinuxCgroupsPath("/interop/" + t)
	oom := 10
	a.SetLinuxOomScoreAdj(&oom)
}

func (p *plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.logf("CreateContainer pod=%s ctr=%s", podID(pod), ctrID(ctr))
	if ctr.GetAnnotations()[annFields] == "yes" {
		p.logFields(ctr)
	}
	if err := common(pod, ctr); err != nil {
		return nil, nil, err
	}

	t := p.tag()
	adjust := &api.ContainerAdjustment{}
	switch v, _ := lookup(pod, ctr, annAdjust); v {
	case "full":
		p.fullAdjustment(adjust, t)
	case "env":
		adjust.AddAnnotation(t+".interop/added", "yes")
		adjust.AddEnv("INTEROP_"+t, "yes")
	default:
		// adjustments of newer contract versions, else nothing
		omit, _ := lookup(pod, ctr, annAdjustOmit)
		adjustExtra(adjust, t, v, strings.Split(omit, ","))
	}
	if v, ok := lookup(pod, ctr, annReplyBytes); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			adjust.AddAnnotation(t+".interop/blob", strings.Repeat("x", n))
		}
	}

	updates := requestedUpdates(pod, ctr)
	if seed, ok := lookup(pod, ctr, annRandom); ok {
		// the differential check's randomized reply (v0.12 builds only)
		if a, u := randomCreate(seed, t, ctrID(ctr)); a != nil {
			adjust, updates = a, u
		}
	}

	if target, ok := lookup(pod, ctr, annUnsolicited); ok && target != "" {
		// Never call UpdateContainers synchronously from a handler: a v0.9.0
		// runtime holds its lock while waiting for our reply (deadlock).
		go p.unsolicited(target)
	}

	return adjust, updates, nil
}

func (p *plugin) unsolicited(target string) {
	u := &api.ContainerUpdate{}
	u.SetContainerId(target)
	u.SetLinuxCPUShares(128)
	failed, err := p.stub.UpdateContainers([]*api.ContainerUpdate{u})
	errText := "-"
	if err != nil {
		errText = err.Error()
	}
	p.logf("Unsolicited ctr=%s failed=%d err=%s", target, len(failed), errText)
}

func (p *plugin) PostCreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	return p.ctrEvent("PostCreateContainer", pod, ctr)
}

func (p *plugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	return p.ctrEvent("StartContainer", pod, ctr)
}

func (p *plugin) PostStartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	return p.ctrEvent("PostStartContainer", pod, ctr)
}

func (p *plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	if err := p.ctrEvent("UpdateContainer", pod, ctr); err != nil {
		return nil, err
	}
	if seed, ok := lookup(pod, ctr, annRandom); ok {
		return randomUpdatesFor(seed, p.tag(), "UpdateContainer", ctrID(ctr)), nil
	}
	return requestedUpdates(pod, ctr), nil
}

func (p *plugin) PostUpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	return p.ctrEvent("PostUpdateContainer", pod, ctr)
}

func (p *plugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	if err := p.ctrEvent("StopContainer", pod, ctr); err != nil {
		return nil, err
	}
	if seed, ok := lookup(pod, ctr, annRandom); ok {
		return randomUpdatesFor(seed, p.tag(), "StopContainer", ctrID(ctr)), nil
	}
	return requestedUpdates(pod, ctr), nil
}

func (p *plugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	return p.ctrEvent("RemoveContainer", pod, ctr)
}

func pluginName(name, idx string) string {
	if name != "" {
		return name
	}
	if env := os.Getenv(api.PluginNameEnvVar); env != "" {
		return env
	}
	base := filepath.Base(os.Args[0])
	if idx != "" || os.Getenv(api.PluginIdxEnvVar) != "" {
		return base
	}
	if _, n, err := api.ParsePluginName(base); err == nil {
		return n
	}
	return base
}

func main() {
	var (
		name       = flag.String("name", "", "plugin name")
		idx        = flag.String("idx", "", "plugin index (two digits)")
		socket     = flag.String("socket", "", "NRI socket path")
		configPath = flag.String("config", "", "config file used when the runtime sends an empty config")
	)
	flagOptions := defineFlags()
	flag.Parse()

	var opts []stub.Option
	if *name != "" {
		opts = append(opts, stub.WithPluginName(*name))
	}
	if *idx != "" {
		opts = append(opts, stub.WithPluginIdx(*idx))
	}
	if *socket != "" {
		opts = append(opts, stub.WithSocketPath(*socket))
	}

	p := &plugin{}
	opts = append(opts, extraOptions(p)...)
	more, err := flagOptions()
	if err != nil {
		fmt.Fprintf(os.Stderr, "goplugin: %v\n", err)
		os.Exit(2)
	}
	opts = append(opts, more...)
	if *configPath != "" {
		buf, err := os.ReadFile(*configPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "goplugin: %v\n", err)
			os.Exit(1)
		}
		p.fileCfg = string(buf)
	}

	s, err := stub.New(p, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "goplugin: failed to create stub: %v\n", err)
		os.Exit(1)
	}
	p.stub = s
	// The default tag is the plugin's name, as registered (same rules as
	// the stub's: option, else NRI_PLUGIN_NAME, else the binary's name).
	p.name = pluginName(*name, *idx)

	// The stub exits the process (status 0) when the connection closes.
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "goplugin: %v\n", err)
		os.Exit(1)
	}
}
