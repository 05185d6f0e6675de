// Command driver runs the Go runtime side of NRI (pkg/adaptation) against
// a plugin binary, end to end: driver B when built with go.mod
// (github.com/containerd/nri v0.9.0), driver C when built with
// go-nri-v0.12.5.mod and the nri_v012 build tag (v0.12.5). What differs
// between the two versions is in nri_v09.go and nri_v012.go. It prints one
// "RESULT <key> <value>" line per figure.
//
//	driver -plugin PATH [-calls N] [-state-calls N] [-warmup N] [-sync 1000,10000|none]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"

	"nri-bench/payload"
)

// quiet swallows the adaptation's log, except that it reports warnings and
// errors on stderr.
type quiet struct{}

func (quiet) Debugf(context.Context, string, ...interface{}) {}
func (quiet) Infof(_ context.Context, f string, a ...interface{}) {
	// The registration line says which NRI version the plugin declared.
	msg := fmt.Sprintf(f, a...)
	if strings.Contains(msg, " registered as ") && showRegistration.CompareAndSwap(true, false) {
		fmt.Fprintf(os.Stderr, "driver: adaptation %s: %s\n", nriVersion, msg)
	}
}
func (quiet) Warnf(_ context.Context, f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "driver: adaptation warning: "+f+"\n", a...)
}
func (quiet) Errorf(_ context.Context, f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "driver: adaptation error: "+f+"\n", a...)
}

// showRegistration: print the next registration line (once per plugin binary).
var showRegistration atomic.Bool

func fatalf(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "driver: "+f+"\n", a...)
	os.Exit(1)
}

func result(key string, v float64) { fmt.Printf("RESULT %s %.3f\n", key, v) }

var clkTck = 100.0

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) float64 {
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fatalf("read stat: %v", err)
	}
	s := string(buf)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return u + st
}

// ctxSwitches sums voluntary and involuntary context switches over every
// thread of pid.
func ctxSwitches(pid int) float64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	total := 0.0
	for _, t := range tasks {
		buf, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(buf), "\n") {
			for _, key := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if strings.HasPrefix(line, key) {
					v, _ := strconv.ParseFloat(strings.TrimSpace(line[len(key):]), 64)
					total += v
				}
			}
		}
	}
	return total
}

// statusKB reads a "Key: N kB" (or plain number) line of /proc/pid/status.
func statusKB(pid int, key string) float64 {
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fatalf("read status: %v", err)
	}
	for _, line := range strings.Split(string(buf), "\n") {
		if strings.HasPrefix(line, key+":") {
			f := strings.Fields(line[len(key)+1:])
			v, _ := strconv.ParseFloat(f[0], 64)
			return v
		}
	}
	fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

type session struct {
	dir    string
	a      *adaptation.Adaptation
	cmd    *exec.Cmd
	pid    int
	synced chan time.Duration
}

// start runs an adaptation with the given state and an external plugin
// dialing its socket, and waits until the plugin is synchronized.
func start(plugin string, pods []*api.PodSandbox, ctrs []*api.Container) *session {
	dir, err := os.MkdirTemp("", "nri-bench-")
	if err != nil {
		fatalf("%v", err)
	}
	s := &session{dir: dir, synced: make(chan time.Duration, 1)}
	for _, d := range []string{"plugins", "conf.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			fatalf("%v", err)
		}
	}
	// Start() calls syncFn once for pre-installed plugins (there are none):
	// time only the calls made for the external plugin, after Start.
	var armed atomic.Bool
	var once sync.Once
	syncFn := func(ctx context.Context, cb adaptation.SyncCB) error {
		if !armed.Load() {
			_, err := cb(ctx, pods, ctrs)
			return err
		}
		t0 := time.Now()
		_, err := cb(ctx, pods, ctrs)
		d := time.Since(t0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "driver: synchronize: %v\n", err)
		}
		once.Do(func() { s.synced <- d })
		return err
	}
	updateFn := func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
		return nil, nil
	}
	sock := filepath.Join(dir, "nri.sock")
	s.a, err = adaptation.New("nri-bench", nriVersion, syncFn, updateFn,
		append(versionOptions(),
			adaptation.WithSocketPath(sock),
			adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
			adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
		)...,
	)
	if err != nil {
		fatalf("adaptation.New: %v", err)
	}
	if err := s.a.Start(); err != nil {
		fatalf("adaptation.Start: %v", err)
	}
	armed.Store(true)
	s.cmd = exec.Command(plugin, "-socket", sock, "-name", "bench", "-idx", "10")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		fatalf("start plugin: %v", err)
	}
	s.pid = s.cmd.Process.Pid
	return s
}

func (s *session) waitSynced() time.Duration {
	select {
	case d := <-s.synced:
		return d
	case <-time.After(60 * time.Second):
		fatalf("plugin not synchronized within 60s")
	}
	return 0
}

func (s *session) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.a.Stop()
	os.RemoveAll(s.dir)
}

func createReq() *adaptation.CreateContainerRequest {
	pod := payload.Pod(1)
	return &adaptation.CreateContainerRequest{Pod: pod, Container: payload.Container(1, pod)}
}

func create(a *adaptation.Adaptation, req *adaptation.CreateContainerRequest) bool {
	resp, err := a.CreateContainer(context.Background(), req)
	if err != nil {
		fatalf("CreateContainer: %v", err)
	}
	adj := resp.GetAdjust()
	return adj != nil && len(adj.GetEnv()) == 2 && len(adj.GetMounts()) == 1
}

func pct(sorted []time.Duration, p float64) float64 {
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i].Nanoseconds()) / 1e3
}

func main() {
	plugin := flag.String("plugin", "", "plugin binary (required)")
	calls := flag.Int("calls", 20000, "CreateContainer calls")
	stateCalls := flag.Int("state-calls", 20000, "StateChange (StartContainer) notifications")
	warmup := flag.Int("warmup", 1000, "warm-up calls before each measurement")
	syncs := flag.String("sync", "1000,10000", "Synchronize sizes (containers), comma-separated")
	flag.Parse()
	if *plugin == "" {
		fatalf("-plugin is required")
	}
	if v, err := strconv.ParseFloat(os.Getenv("NRI_BENCH_CLK_TCK"), 64); err == nil && v > 0 {
		clkTck = v
	}
	nrilog.Set(quiet{})
	showRegistration.Store(true)

	// CreateContainer and StateChange.
	s := start(*plugin, nil, nil)
	s.waitSynced()
	req := createReq()
	// The plugin joins the adaptation's list just after Synchronize.
	deadline := time.Now().Add(10 * time.Second)
	for !create(s.a, req) {
		if time.Now().After(deadline) {
			fatalf("the plugin never adjusted a container")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < *warmup; i++ {
		create(s.a, req)
	}
	lat := make([]time.Duration, *calls)
	cs0 := ctxSwitches(s.pid)
	cpu0 := cpuTicks(s.pid)
	t0 := time.Now()
	for i := range lat {
		t := time.Now()
		if !create(s.a, req) {
			fatalf("CreateContainer: reply without the adjustment")
		}
		lat[i] = time.Since(t)
	}
	total := time.Since(t0)
	cpu1 := cpuTicks(s.pid)
	cs1 := ctxSwitches(s.pid)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	result("create_p50_us", pct(lat, 0.50))
	result("create_p99_us", pct(lat, 0.99))
	result("create_calls_per_s", float64(*calls)/total.Seconds())
	result("create_cpu_us_per_call", (cpu1-cpu0)/clkTck*1e6/float64(*calls))
	result("create_plugin_ctxsw_per_call", (cs1-cs0)/float64(*calls))

	// StartContainer: a StateChange notification under v0.9.0, the
	// per-event StartContainer RPC under v0.12 (or StateChange again, when
	// the plugin does not implement the RPC).
	startContainer := startContainerFn(s.a, req.Pod, req.Container)
	for i := 0; i < *warmup; i++ {
		if err := startContainer(); err != nil {
			fatalf("StartContainer: %v", err)
		}
	}
	t0 = time.Now()
	for i := 0; i < *stateCalls; i++ {
		if err := startContainer(); err != nil {
			fatalf("StartContainer: %v", err)
		}
	}
	result("state_per_s", float64(*stateCalls)/time.Since(t0).Seconds())
	reportTransport()
	s.stop()

	// Synchronize: a fresh plugin per size.
	for _, f := range strings.Split(*syncs, ",") {
		if f = strings.TrimSpace(f); f == "" || f == "none" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			fatalf("bad -sync size %q", f)
		}
		pods, ctrs := payload.State(n)
		s := start(*plugin, pods, ctrs)
		d := s.waitSynced()
		result(fmt.Sprintf("sync_%d_ms", n), float64(d.Nanoseconds())/1e6)
		result(fmt.Sprintf("sync_%d_hwm_kb", n), statusKB(s.pid, "VmHWM"))
		// All the CPU the fresh plugin used: start-up, Configure, Synchronize
		// and whatever it did right after replying (freeing the state, GC).
		time.Sleep(300 * time.Millisecond)
		result(fmt.Sprintf("sync_%d_plugin_cpu_ms", n), cpuTicks(s.pid)/clkTck*1e3)
		s.stop()
	}
}
