//go:build nri_v0_12_5

// Command differential is the reference side of the differential check
// between this crate's runtime side (nri::runtime's PluginSet) and the Go
// runtime side it emulates (github.com/containerd/nri v0.12.5
// pkg/adaptation).
//
// It starts the Go adaptation with three contract plugins built on v0.12.5:
// 10-a and 20-b answer with randomized adjustments and updates (the
// goplugin's interop/random annotation: the same seed gives the same replies
// under every runtime), 30-v validates and appends every validation request
// it gets to a file. It then relays a deterministic series of
// CreateContainer, UpdateContainer and StopContainer requests drawn from
// -seed, and writes each request and its outcome (the error, or the merged
// reply, and what the validator was sent) to -out. interop-runtime
// -differential replays the same requests against nri::runtime with the same
// plugins and compares (see ../README.md).
//
//	differential -plugin GOPLUGIN -seed N -cases N -out FILE [-v]
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/log"
	"google.golang.org/protobuf/proto"
)

// Magic opens the output file.
const Magic = "NRIDIFF1"

// counter tells when the plugins are registered (the adaptation has no
// public plugin list; its metrics hook reports the count).
type counter struct {
	mu sync.Mutex
	n  int
	c  *sync.Cond
}

func newCounter() *counter {
	c := &counter{}
	c.c = sync.NewCond(&c.mu)
	return c
}

func (c *counter) RecordPluginInvocation(string, string, error)                               {}
func (c *counter) RecordPluginLatency(string, string, time.Duration)                          {}
func (c *counter) RecordPluginAdjustments(string, string, *api.ContainerAdjustment, int, int) {}
func (c *counter) UpdatePluginCount(n int) {
	c.mu.Lock()
	c.n = n
	c.mu.Unlock()
	c.c.Broadcast()
}

func (c *counter) wait(n int, timeout time.Duration) error {
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		for c.n < n {
			c.c.Wait()
		}
		c.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%d plugins not registered within %v", n, timeout)
	}
}

// quietLogger keeps the adaptation's log out of the output unless -v.
type quietLogger struct{ verbose bool }

func (l quietLogger) out(level, format string, args ...interface{}) {
	if l.verbose {
		fmt.Fprintf(os.Stderr, "    | %s "+format+"\n", append([]interface{}{level}, args...)...)
	}
}
func (l quietLogger) Debugf(_ context.Context, f string, a ...interface{}) { l.out("DEBUG", f, a...) }
func (l quietLogger) Infof(_ context.Context, f string, a ...interface{})  { l.out("INFO", f, a...) }
func (l quietLogger) Warnf(_ context.Context, f string, a ...interface{})  { l.out("WARN", f, a...) }
func (l quietLogger) Errorf(_ context.Context, f string, a ...interface{}) { l.out("ERROR", f, a...) }

func main() {
	var (
		plugin  = flag.String("plugin", "", "goplugin built on NRI v0.12.5")
		seed    = flag.Int64("seed", 1, "seed of the requests and of the plugins' replies")
		cases   = flag.Int("cases", 200, "number of requests")
		out     = flag.String("out", "", "output file")
		verbose = flag.Bool("v", false, "show the adaptation's log")
	)
	flag.Parse()
	if *plugin == "" || *out == "" || *cases < 1 {
		fmt.Fprintln(os.Stderr, "usage: differential -plugin GOPLUGIN -seed N -cases N -out FILE [-v]")
		os.Exit(2)
	}
	if err := run(*plugin, *seed, *cases, *out, *verbose); err != nil {
		fmt.Fprintf(os.Stderr, "differential: %v\n", err)
		os.Exit(1)
	}
}

func run(plugin string, seed int64, cases int, out string, verbose bool) error {
	log.Set(quietLogger{verbose})
	dir, err := os.MkdirTemp("", "nri-differential-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "nri.sock")
	dump := filepath.Join(dir, "validations.bin")
	count := newCounter()
	syncFn := func(ctx context.Context, cb nri.SyncCB) error {
		_, err := cb(ctx, nil, nil)
		return err
	}
	updateFn := func(context.Context, []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) {
		return nil, nil
	}
	a, err := nri.New("nri-differential", "v0.1.0", syncFn, updateFn,
		nri.WithSocketPath(sock),
		nri.WithPluginPath(filepath.Join(dir, "plugins")),
		nri.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
		nri.WithMetrics(count))
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	defer a.Stop()

	plugins := []struct{ name, idx, config string }{
		{"a", "10", "tag=a\nevents=createcontainer,updatecontainer,stopcontainer\n"},
		{"b", "20", "tag=b\nevents=createcontainer,updatecontainer,stopcontainer\n"},
		{"v", "30", "tag=v\nevents=validatecontaineradjustment\ndump=" + dump + "\n"},
	}
	for i, p := range plugins {
		cfg := filepath.Join(dir, p.idx+"-"+p.name+".conf")
		if err := os.WriteFile(cfg, []byte(p.config), 0o644); err != nil {
			return err
		}
		cmd := exec.Command(plugin, "-socket", sock, "-name", p.name, "-idx", p.idx, "-config", cfg)
		if verbose {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
		// one at a time: the adaptation accepts external plugins in order
		if err := count.wait(i+1, 10*time.Second); err != nil {
			return err
		}
	}

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	w := &writer{f: f}
	w.raw([]byte(Magic))
	offset := 0
	for i := 0; i < cases; i++ {
		c := newCase(seed, i)
		outcome, resp := c.run(a)
		validations, n, err := readDump(dump, offset)
		if err != nil {
			return err
		}
		offset = n
		w.field([]byte(c.op))
		w.msg(c.pod)
		w.msg(c.ctr)
		w.msg(c.res)
		w.field([]byte(outcome))
		w.msg(resp)
		w.u32(uint32(len(validations)))
		for _, v := range validations {
			w.field(v)
		}
		if w.err != nil {
			return w.err
		}
	}
	return nil
}

// writer writes length-prefixed fields, remembering the first error.
type writer struct {
	f   *os.File
	err error
}

func (w *writer) raw(b []byte) {
	if w.err == nil {
		_, w.err = w.f.Write(b)
	}
}

func (w *writer) u32(n uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	w.raw(b[:])
}

func (w *writer) field(b []byte) {
	w.u32(uint32(len(b)))
	w.raw(b)
}

func (w *writer) msg(m proto.Message) {
	if m == nil {
		w.field(nil)
		return
	}
	b, err := proto.Marshal(m)
	if err != nil && w.err == nil {
		w.err = err
	}
	w.field(b)
}

// readDump returns the validation requests appended from byte offset on,
// and the new offset.
func readDump(path string, offset int) ([][]byte, int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, offset, nil
	}
	if err != nil {
		return nil, offset, err
	}
	end := len(data)
	data = data[offset:]
	var recs [][]byte
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, offset, fmt.Errorf("truncated dump record")
		}
		n := binary.BigEndian.Uint32(data)
		if int(n) > len(data)-4 {
			return nil, offset, fmt.Errorf("truncated dump record")
		}
		recs = append(recs, data[4:4+n])
		data = data[4+n:]
	}
	return recs, end, nil
}

// A case: one request with its inputs.
type testCase struct {
	op  string // create, update or stop
	pod *api.PodSandbox
	ctr *api.Container
	res *api.LinuxResources
}

// newCase draws case i of a seed: the request, a pod and a container with
// some state for the plugins' removals to hit, and the interop/random seed
// of the plugins' replies.
func newCase(seed int64, i int) *testCase {
	r := rand.New(rand.NewSource(seed*1_000_003 + int64(i)))
	p := func(pct int) bool { return r.Intn(100) < pct }
	c := &testCase{op: "create"}
	switch n := r.Intn(100); {
	case n >= 85:
		c.op = "stop"
	case n >= 70:
		c.op = "update"
	}
	c.pod = &api.PodSandbox{
		Id:        fmt.Sprintf("pod-%d", i%4),
		Name:      fmt.Sprintf("pod%d", i%4),
		Namespace: "default",
		Uid:       fmt.Sprintf("uid-%d", i%4),
	}
	ann := map[string]string{"interop/random": fmt.Sprintf("%d-%d", seed, i)}
	for k := 0; k < 3; k++ {
		if p(50) {
			ann[fmt.Sprintf("orig-ann-%d", k)] = "orig"
		}
	}
	if p(10) {
		ann["interop/validate"] = "reject"
	}
	ctr := &api.Container{
		Id:           fmt.Sprintf("ctr-%d", i),
		PodSandboxId: c.pod.Id,
		Name:         fmt.Sprintf("c%d", i),
		State:        api.ContainerState_CONTAINER_CREATED,
		Annotations:  ann,
		Labels:       map[string]string{"app": "diff"},
		Args:         []string{"/bin/sh", "-c", "sleep 1"},
		Linux:        &api.LinuxContainer{},
	}
	for k := 0; k < 3; k++ {
		if p(50) {
			ctr.Mounts = append(ctr.Mounts, &api.Mount{Destination: fmt.Sprintf("/orig/m%d", k), Type: "bind", Source: "/orig"})
		}
		if p(50) {
			ctr.Env = append(ctr.Env, fmt.Sprintf("ORIG_%d=%d", k, k))
		}
		if p(50) {
			ctr.Linux.Devices = append(ctr.Linux.Devices, &api.LinuxDevice{Path: fmt.Sprintf("/dev/orig%d", k), Type: "c", Major: 1, Minor: int64(k)})
		}
	}
	for _, t := range []string{"network", "ipc", "uts", "pid"} {
		if p(40) {
			ctr.Linux.Namespaces = append(ctr.Linux.Namespaces, &api.LinuxNamespace{Type: t, Path: "/proc/1/ns/" + t})
		}
	}
	if p(40) {
		ctr.Linux.Sysctl = map[string]string{"net.orig": "1"}
	}
	if p(50) {
		ctr.Linux.Resources = &api.LinuxResources{
			Memory: &api.LinuxMemory{Limit: api.Int64(int64(1 << 20))},
			Cpu:    &api.LinuxCPU{Shares: api.UInt64(uint64(512))},
		}
	}
	if p(30) {
		ctr.Rlimits = []*api.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 100, Soft: 10}}
	}
	if c.op != "create" {
		ctr.State = api.ContainerState_CONTAINER_RUNNING
	}
	c.ctr = ctr
	if c.op == "update" {
		c.res = &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: fmt.Sprintf("0-%d", r.Intn(4))}}
		if p(50) {
			c.res.Memory = &api.LinuxMemory{Limit: api.Int64(int64(r.Intn(1 << 20)))}
		}
		if p(30) {
			c.res.Pids = &api.LinuxPids{Limit: int64(r.Intn(100))}
		}
		if p(30) {
			c.res.Unified = map[string]string{"uni-orig": "1"}
		}
	}
	return c
}

// run relays the case's request and returns the error text ("" for none)
// and the merged reply.
func (c *testCase) run(a *nri.Adaptation) (string, proto.Message) {
	ctx := context.Background()
	// The adaptation fills in a request's empty parts in place: relay a copy.
	pod := proto.Clone(c.pod).(*api.PodSandbox)
	ctr := proto.Clone(c.ctr).(*api.Container)
	switch c.op {
	case "create":
		rpl, err := a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})
		if err != nil {
			return err.Error(), nil
		}
		return "", rpl
	case "update":
		res := proto.Clone(c.res).(*api.LinuxResources)
		rpl, err := a.UpdateContainer(ctx, &api.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: res})
		if err != nil {
			return err.Error(), nil
		}
		// The reference appends the updated container's entry even when no
		// plugin touched it, as a nil; the runtime side leaves it out.
		var kept []*api.ContainerUpdate
		for _, u := range rpl.Update {
			if u != nil {
				kept = append(kept, u)
			}
		}
		rpl.Update = kept
		return "", rpl
	default:
		rpl, err := a.StopContainer(ctx, &api.StopContainerRequest{Pod: pod, Container: ctr})
		if err != nil {
			return err.Error(), nil
		}
		return "", rpl
	}
}
