package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

var scenarios = []scenario{
	{"external-register", scExternalRegister},
	{"launched-preregistered", scLaunchedPreregistered},
	{"synchronize-small", scSynchronizeSmall},
	{"synchronize-chunked", scSynchronizeChunked},
	{"lifecycle-events", scLifecycleEvents},
	{"event-subscription", scEventSubscription},
	{"create-full-adjustment", scCreateFullAdjustment},
	{"update-and-stop-replies", scUpdateAndStopReplies},
	{"message-sizes", scMessageSizes},
	{"unsolicited-update", scUnsolicitedUpdate},
	{"handler-failure", scHandlerFailure},
	{"slow-handler-dropped", scSlowHandlerDropped},
	{"plugin-restart", scPluginRestart},
	{"launched-plugin-killed", scLaunchedPluginKilled},
	{"two-plugins-ordering", scTwoPluginsOrdering},
}

const failMsg = "interop: failure requested"

var bg = context.Background()

// ---------------------------------------------------------------------------
// helpers

func (h *H) create(pod *api.PodSandbox, ctr *api.Container) (*api.CreateContainerResponse, error) {
	return h.a.CreateContainer(bg, &api.CreateContainerRequest{Pod: pod, Container: ctr})
}

func withState(c *api.Container, s api.ContainerState) *api.Container {
	c.State = s
	return c
}

type lifecycleResult struct {
	create *api.CreateContainerResponse
	update *api.UpdateContainerResponse
	stop   *api.StopContainerResponse
}

// lifecycle calls every adaptation entry point in lifecycle order for one
// pod and one container (built afresh by mk for each call, since the
// adaptation mutates requests) and returns the expected plugin log lines.
func (h *H) lifecycle(pod *api.PodSandbox, mk func() *api.Container) (lifecycleResult, []expectLine, error) {
	var res lifecycleResult
	p, c := pod.Id, mk().Id
	want := []expectLine{
		{"RunPodSandbox", p, "-"},
		{"CreateContainer", p, c},
		{"PostCreateContainer", p, c},
		{"StartContainer", p, c},
		{"PostStartContainer", p, c},
		{"UpdateContainer", p, c},
		{"PostUpdateContainer", p, c},
		{"StopContainer", p, c},
		{"RemoveContainer", p, c},
		{"StopPodSandbox", p, "-"},
		{"RemovePodSandbox", p, "-"},
	}
	created := api.ContainerState_CONTAINER_CREATED
	running := api.ContainerState_CONTAINER_RUNNING
	stopped := api.ContainerState_CONTAINER_STOPPED
	newRes := &api.LinuxResources{
		Memory: &api.LinuxMemory{Limit: api.Int64(512 << 20)},
		Cpu:    &api.LinuxCPU{Shares: api.UInt64(204), Quota: api.Int64(40000), Period: api.UInt64(100000)},
	}
	var err error
	steps := []struct {
		name string
		fn   func() error
	}{
		{"RunPodSandbox", func() error { return h.a.RunPodSandbox(bg, &api.StateChangeEvent{Pod: pod}) }},
		{"CreateContainer", func() error {
			res.create, err = h.a.CreateContainer(bg, &api.CreateContainerRequest{Pod: pod, Container: mk()})
			return err
		}},
		{"PostCreateContainer", func() error {
			return h.a.PostCreateContainer(bg, &api.StateChangeEvent{Pod: pod, Container: withState(mk(), created)})
		}},
		{"StartContainer", func() error {
			return h.a.StartContainer(bg, &api.StateChangeEvent{Pod: pod, Container: withState(mk(), created)})
		}},
		{"PostStartContainer", func() error {
			return h.a.PostStartContainer(bg, &api.StateChangeEvent{Pod: pod, Container: withState(mk(), running)})
		}},
		{"UpdateContainer", func() error {
			res.update, err = h.a.UpdateContainer(bg, &api.UpdateContainerRequest{
				Pod: pod, Container: withState(mk(), running), LinuxResources: newRes})
			return err
		}},
		{"PostUpdateContainer", func() error {
			return h.a.PostUpdateContainer(bg, &api.StateChangeEvent{Pod: pod, Container: withState(mk(), running)})
		}},
		{"StopContainer", func() error {
			res.stop, err = h.a.StopContainer(bg, &api.StopContainerRequest{Pod: pod, Container: withState(mk(), running)})
			return err
		}},
		{"RemoveContainer", func() error {
			return h.a.RemoveContainer(bg, &api.StateChangeEvent{Pod: pod, Container: withState(mk(), stopped)})
		}},
		{"StopPodSandbox", func() error { return h.a.StopPodSandbox(bg, &api.StateChangeEvent{Pod: pod}) }},
		{"RemovePodSandbox", func() error { return h.a.RemovePodSandbox(bg, &api.StateChangeEvent{Pod: pod}) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return res, want, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return res, want, nil
}

// checkPreamble checks that es starts with Configure (runtime name/version)
// then Synchronize with the given counts.
func checkPreamble(es []entry, at, pods, ctrs int) error {
	if len(es) < at+2 {
		return fmt.Errorf("plugin log: want Configure and Synchronize at line %d, log: %s", at+1, summarize(es))
	}
	c, s := es[at], es[at+1]
	wantRT := runtimeName + "/" + runtimeVersion
	if c.event != "Configure" || c.kv["pod"] != "-" || c.kv["ctr"] != "-" || c.kv["runtime"] != wantRT {
		return fmt.Errorf("plugin log line %d: got %q, want \"Configure pod=- ctr=- runtime=%s\"", at+1, c.raw, wantRT)
	}
	if s.event != "Synchronize" || s.kv["pods"] != strconv.Itoa(pods) || s.kv["containers"] != strconv.Itoa(ctrs) {
		return fmt.Errorf("plugin log line %d: got %q, want \"Synchronize pods=%d containers=%d\"", at+2, s.raw, pods, ctrs)
	}
	return nil
}

func checkUpdate(what string, u *api.ContainerUpdate, id string, shares uint64, ignore bool) error {
	if u == nil {
		return fmt.Errorf("%s: no update", what)
	}
	if u.ContainerId != id {
		return fmt.Errorf("%s: update for container %q, want %q", what, u.ContainerId, id)
	}
	got := u.GetLinux().GetResources().GetCpu().GetShares()
	if got == nil || got.GetValue() != shares {
		return fmt.Errorf("%s: update of %s: cpu shares %v, want %d", what, id, got, shares)
	}
	if u.IgnoreFailure != ignore {
		return fmt.Errorf("%s: update of %s: ignore_failure %v, want %v", what, id, u.IgnoreFailure, ignore)
	}
	return nil
}

// nonNil drops the nil entries v0.9.0 puts into UpdateContainer replies
// (it always appends the entry of the updated container, even when no
// plugin asked to change it).
func nonNil(us []*api.ContainerUpdate) []*api.ContainerUpdate {
	var out []*api.ContainerUpdate
	for _, u := range us {
		if u != nil {
			out = append(out, u)
		}
	}
	return out
}

func updateIDs(us []*api.ContainerUpdate) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ContainerId)
	}
	return ids
}

// emptyAdjustment is what v0.9.0 returns for a CreateContainer no plugin adjusted.
func emptyAdjustment() *api.ContainerAdjustment {
	return &api.ContainerAdjustment{
		Hooks: &api.Hooks{},
		Linux: &api.LinuxContainerAdjustment{
			Resources: &api.LinuxResources{Memory: &api.LinuxMemory{}, Cpu: &api.LinuxCPU{}},
		},
	}
}

func checkEmptyAdjustment(what string, resp *api.CreateContainerResponse) error {
	if resp == nil {
		return fmt.Errorf("%s: nil response", what)
	}
	if d := diffProto("adjust", emptyAdjustment(), resp.Adjust); len(d) > 0 {
		return fmt.Errorf("%s: adjustment not empty: %s", what, joinDiffs(d))
	}
	if len(resp.Update) != 0 || len(resp.Evict) != 0 {
		return fmt.Errorf("%s: unexpected updates %v / evictions %d", what, updateIDs(resp.Update), len(resp.Evict))
	}
	return nil
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// 1. external-register

func scExternalRegister(h *H) error {
	if err := h.start(); err != nil {
		return err
	}
	logA := h.path("ext.log")
	pa, err := h.external(h.plugin, "ext", "10", "log="+logA+"\n")
	if err != nil {
		return err
	}
	// a second instance with no config at all (what external plugins get)
	pb, err := h.external(h.plugin, "bare", "11", "")
	if err != nil {
		return err
	}
	list, err := h.plugins()
	if err != nil {
		return err
	}
	if len(list) != 2 || list[0].name != "10-ext" || list[1].name != "11-bare" {
		return fmt.Errorf("plugin list %+v, want [10-ext 11-bare]", list)
	}
	for i, p := range list {
		want := []*proc{pa, pb}[i]
		switch {
		case !p.external:
			return fmt.Errorf("%s listed as pre-connected, want external", p.name)
		case p.closed:
			return fmt.Errorf("%s listed as closed", p.name)
		case p.pid != want.cmd.Process.Pid:
			return fmt.Errorf("%s: peer pid %d, want %d", p.name, p.pid, want.cmd.Process.Pid)
		case p.events != api.ValidEvents:
			return fmt.Errorf("%s subscribed to 0x%x, want all events 0x%x", p.name, int32(p.events), int32(api.ValidEvents))
		}
	}
	es, err := waitEntries(logA, 2*time.Second, "Configure+Synchronize", func(es []entry) bool { return len(es) >= 2 })
	if err != nil {
		return err
	}
	if err := checkPreamble(es, 0, 0, 0); err != nil {
		return err
	}
	if len(es) != 2 {
		return fmt.Errorf("plugin log: unexpected extra lines: %s", summarize(es))
	}
	return nil
}

// ---------------------------------------------------------------------------
// 2. launched-preregistered

func scLaunchedPreregistered(h *H) error {
	logL := h.path("launched.log")
	if err := h.installLaunched(h.plugin, "20-launched", "log="+logL+"\ntag=launched\n"); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	info, ok, err := h.findPlugin("20-launched")
	if err != nil {
		return err
	}
	if !ok {
		names, _ := h.activePlugins()
		return fmt.Errorf("20-launched not in plugin list %v", names)
	}
	if info.external || info.pid <= 0 {
		return fmt.Errorf("20-launched: external=%v pid=%d, want launched with a pid", info.external, info.pid)
	}
	es, err := readLog(logL)
	if err != nil {
		return err
	}
	if err := checkPreamble(es, 0, 0, 0); err != nil {
		return fmt.Errorf("%v (conf.d config not delivered?)", err)
	}
	pod := mkPod("pod-l", nil)
	resp, err := h.create(pod, mkCtr("ctr-l", pod.Id, map[string]string{"interop/adjust": "env"}))
	if err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	if v := resp.GetAdjust().GetAnnotations()["launched.interop/added"]; v != "yes" {
		return fmt.Errorf("adjustment annotations %v, want launched.interop/added=yes (tag from conf.d)", resp.GetAdjust().GetAnnotations())
	}
	env := resp.GetAdjust().GetEnv()
	if len(env) != 1 || env[0].Key != "INTEROP_launched" || env[0].Value != "yes" {
		return fmt.Errorf("adjustment env %v, want [INTEROP_launched=yes]", env)
	}
	es, err = readLog(logL)
	if err != nil {
		return err
	}
	return checkEventSeq(es, []expectLine{{"CreateContainer", "pod-l", "ctr-l"}})
}

// ---------------------------------------------------------------------------
// 3. synchronize-small / synchronize-chunked

func checkSyncUpdates(what string, got []*api.ContainerUpdate, ids ...string) error {
	if len(got) != len(ids) {
		return fmt.Errorf("%s: %d sync updates %v, want %v", what, len(got), updateIDs(got), ids)
	}
	byID := map[string]*api.ContainerUpdate{}
	for _, u := range got {
		byID[u.ContainerId] = u
	}
	for _, id := range ids {
		if err := checkUpdate(what, byID[id], id, 384, false); err != nil {
			return err
		}
	}
	return nil
}

func scSynchronizeSmall(h *H) error {
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	for i := 0; i < 3; i++ {
		pods = append(pods, mkPod(fmt.Sprintf("pod-%d", i), nil))
	}
	for i := 0; i < 5; i++ {
		var ann map[string]string
		if i == 1 || i == 4 {
			ann = map[string]string{"interop/sync-update": "yes"}
		}
		c := withState(mkCtr(fmt.Sprintf("ctr-%d", i), pods[i%3].Id, ann), api.ContainerState_CONTAINER_RUNNING)
		ctrs = append(ctrs, c)
	}
	h.setState(pods, ctrs)

	logL, logE := h.path("sync-launched.log"), h.path("sync-external.log")
	if err := h.installLaunched(h.plugin, "30-synclaunched", "log="+logL+"\n"); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	if _, err := h.external(h.plugin, "syncext", "40", "log="+logE+"\n"); err != nil {
		return err
	}
	for _, l := range []string{logL, logE} {
		es, err := readLog(l)
		if err != nil {
			return err
		}
		if err := checkPreamble(es, 0, 3, 5); err != nil {
			return err
		}
		if len(filterEvent(es, "Synchronize")) != 1 {
			return fmt.Errorf("plugin log: more than one Synchronize: %s", summarize(es))
		}
	}
	calls := h.getSyncUpdates()
	if len(calls) != 2 {
		return fmt.Errorf("syncFn called %d times, want 2 (startup + external plugin)", len(calls))
	}
	if err := checkSyncUpdates("launched plugin sync", calls[0], "ctr-1", "ctr-4"); err != nil {
		return err
	}
	return checkSyncUpdates("external plugin sync", calls[1], "ctr-1", "ctr-4")
}

func scSynchronizeChunked(h *H) error {
	const nPods, nCtrs = 24, 96
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	for i := 0; i < nPods; i++ {
		pods = append(pods, mkPod(fmt.Sprintf("pod-%02d", i), map[string]string{
			"interop/pad": strings.Repeat("p", 16<<10),
		}))
	}
	for i := 0; i < nCtrs; i++ {
		ann := map[string]string{"interop/pad": strings.Repeat("c", 48<<10)}
		if i == 1 || i == nCtrs-2 {
			ann["interop/sync-update"] = "yes"
		}
		ctrs = append(ctrs, withState(mkCtr(fmt.Sprintf("ctr-%02d", i), pods[i%nPods].Id, ann), api.ContainerState_CONTAINER_RUNNING))
	}
	h.setState(pods, ctrs)

	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("chunked.log")
	if _, err := h.external(h.plugin, "chunked", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	if err := checkPreamble(es, 0, nPods, nCtrs); err != nil {
		return err
	}
	if n := len(filterEvent(es, "Synchronize")); n != 1 {
		return fmt.Errorf("plugin log: %d Synchronize lines, want 1: %s", n, summarize(es))
	}
	// prove the adaptation really split the state
	if h.countLogMsg(regexp.MustCompile(`oversized message, retrying in smaller chunks`)) == 0 {
		return errors.New("adaptation did not split the sync request (state not over 4 MiB?)")
	}
	chunks := h.countLogMsg(regexp.MustCompile(`sending sync message, .*\(more: (true|false)\)`))
	if chunks < 3 { // one oversized attempt + at least two chunks
		return fmt.Errorf("adaptation sent %d sync messages, want >= 3", chunks)
	}
	calls := h.getSyncUpdates()
	if len(calls) != 2 {
		return fmt.Errorf("syncFn called %d times, want 2", len(calls))
	}
	return checkSyncUpdates("chunked sync", calls[1], "ctr-01", fmt.Sprintf("ctr-%02d", nCtrs-2))
}

// ---------------------------------------------------------------------------
// 4. lifecycle-events

func scLifecycleEvents(h *H) error {
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("life.log")
	if _, err := h.external(h.plugin, "life", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	pod := mkPod("pod-life", nil)
	res, want, err := h.lifecycle(pod, func() *api.Container { return mkCtr("ctr-life", pod.Id, nil) })
	if err != nil {
		return err
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	if err := checkPreamble(es, 0, 0, 0); err != nil {
		return err
	}
	if err := checkEventSeq(es, want); err != nil {
		return err
	}
	if err := checkEmptyAdjustment("CreateContainer", res.create); err != nil {
		return err
	}
	if u := nonNil(res.update.GetUpdate()); len(u) != 0 {
		return fmt.Errorf("UpdateContainer: unexpected updates %v", updateIDs(u))
	}
	if u := res.stop.GetUpdate(); len(u) != 0 {
		return fmt.Errorf("StopContainer: unexpected updates %v", updateIDs(u))
	}
	return nil
}

// event-subscription (extra): the "events" config key reaches the runtime as
// the Configure reply's mask, and only subscribed events are delivered.
func scEventSubscription(h *H) error {
	if err := h.start(); err != nil {
		return err
	}
	logA, logB := h.path("sub.log"), h.path("podsub.log")
	if _, err := h.external(h.plugin, "sub", "10", "log="+logA+"\nevents=createcontainer,stopcontainer\n"); err != nil {
		return err
	}
	if _, err := h.external(h.plugin, "podsub", "11", "log="+logB+"\nevents=pod,RemoveContainer\n"); err != nil {
		return err
	}
	wantMask := map[string]api.EventMask{
		"10-sub":    api.MustParseEventMask("createcontainer,stopcontainer"),
		"11-podsub": api.MustParseEventMask("runpodsandbox,stoppodsandbox,removepodsandbox,removecontainer"),
	}
	list, err := h.plugins()
	if err != nil {
		return err
	}
	for _, p := range list {
		if w, ok := wantMask[p.name]; ok && p.events != w {
			return fmt.Errorf("%s subscribed to 0x%x, want 0x%x", p.name, int32(p.events), int32(w))
		}
	}
	pod := mkPod("pod-sub", nil)
	if _, _, err := h.lifecycle(pod, func() *api.Container { return mkCtr("ctr-sub", pod.Id, nil) }); err != nil {
		return err
	}
	esA, err := readLog(logA)
	if err != nil {
		return err
	}
	if err := checkEventSeq(esA, []expectLine{
		{"CreateContainer", "pod-sub", "ctr-sub"},
		{"StopContainer", "pod-sub", "ctr-sub"},
	}); err != nil {
		return fmt.Errorf("10-sub: %w", err)
	}
	esB, err := readLog(logB)
	if err != nil {
		return err
	}
	if err := checkEventSeq(esB, []expectLine{
		{"RunPodSandbox", "pod-sub", "-"},
		{"RemoveContainer", "pod-sub", "ctr-sub"},
		{"StopPodSandbox", "pod-sub", "-"},
		{"RemovePodSandbox", "pod-sub", "-"},
	}); err != nil {
		return fmt.Errorf("11-podsub: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// 5. create-full-adjustment

func scCreateFullAdjustment(h *H) error {
	if err := h.start(); err != nil {
		return err
	}
	// no tag in the config: the tag defaults to the plugin name
	if _, err := h.external(h.plugin, "adj", "10", "log="+h.path("adj.log")+"\n"); err != nil {
		return err
	}
	const t = "adj"
	pod := mkPod("pod-adj", nil)
	ctr := mkCtr("ctr-adj", pod.Id, map[string]string{
		"interop/adjust":    "full",
		"interop/remove-me": "please",
	})
	ctr.Mounts = append(ctr.Mounts, &api.Mount{Destination: "/mnt/remove-me", Type: "bind", Source: "/tmp/remove-me", Options: []string{"rbind"}})
	ctr.Env = append(ctr.Env, "REMOVE_ME=1")
	ctr.Linux.Devices = append(ctr.Linux.Devices, &api.LinuxDevice{Path: "/dev/remove-me", Type: "c", Major: 1, Minor: 5})

	resp, err := h.create(pod, ctr)
	if err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	want := expectedFullAdjustment(t)
	// (api.FileMode/api.UInt32 silently return nil for an untyped constant:
	// make sure the expectation really has these set.)
	if d := want.Linux.Devices[0]; d.FileMode == nil || d.Uid == nil || d.Gid == nil {
		return errors.New("harness bug: expected device lacks file_mode/uid/gid")
	}
	if d := diffProto("adjust", want, resp.GetAdjust()); len(d) > 0 {
		return fmt.Errorf("adjustment differs: %s", joinDiffs(d))
	}
	if len(resp.Update) != 0 || len(resp.Evict) != 0 {
		return fmt.Errorf("unexpected updates %v / evictions %d", updateIDs(resp.Update), len(resp.Evict))
	}

	// The adaptation also applies the adjustment to the request's container
	// (that is the only place env and device removals show in v0.9.0).
	var problems []string
	if ctr.Annotations[t+".interop/added"] != "yes" {
		problems = append(problems, "annotation not added to request")
	}
	// (v0.9.0 reports a removal-only annotation in the reply but leaves it
	// in the request, so interop/remove-me is not checked here.)
	var mounts []string
	for _, m := range ctr.Mounts {
		mounts = append(mounts, m.Destination)
	}
	if hasString(mounts, "/mnt/remove-me") || !hasString(mounts, "/mnt/"+t) {
		problems = append(problems, fmt.Sprintf("request mounts %v", mounts))
	}
	if hasString(ctr.Env, "REMOVE_ME=1") || !hasString(ctr.Env, "INTEROP_"+t+"=yes") {
		problems = append(problems, fmt.Sprintf("request env %v", ctr.Env))
	}
	var devs []string
	for _, d := range ctr.Linux.Devices {
		devs = append(devs, d.Path)
	}
	if hasString(devs, "/dev/remove-me") || !hasString(devs, "/dev/"+t+"-dev") {
		problems = append(problems, fmt.Sprintf("request devices %v", devs))
	}
	if ctr.Linux.CgroupsPath != "/interop/"+t || ctr.Linux.OomScoreAdj.GetValue() != 10 {
		problems = append(problems, fmt.Sprintf("request cgroups path %q oom %v", ctr.Linux.CgroupsPath, ctr.Linux.OomScoreAdj))
	}
	if len(problems) > 0 {
		return fmt.Errorf("adjusted request: %s", strings.Join(problems, "; "))
	}
	return nil
}

// ---------------------------------------------------------------------------
// 6. update-and-stop-replies

func scUpdateAndStopReplies(h *H) error {
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("upd.log")
	if _, err := h.external(h.plugin, "upd", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	running := api.ContainerState_CONTAINER_RUNNING
	pod := mkPod("pod-u", nil)
	req := func(id string, ann map[string]string) *api.UpdateContainerRequest {
		return &api.UpdateContainerRequest{
			Pod:       pod,
			Container: withState(mkCtr(id, pod.Id, ann), running),
			LinuxResources: &api.LinuxResources{
				Memory: &api.LinuxMemory{Limit: api.Int64(1 << 30)},
				Cpu:    &api.LinuxCPU{Shares: api.UInt64(1024), Cpus: "2-3"},
			},
		}
	}

	// (a) UpdateContainer(c1) asks to update another container c2
	r1, err := h.a.UpdateContainer(bg, req("c1", map[string]string{"interop/update": "c2"}))
	if err != nil {
		return fmt.Errorf("UpdateContainer(c1): %w", err)
	}
	u1 := nonNil(r1.GetUpdate())
	if len(u1) != 1 {
		return fmt.Errorf("UpdateContainer(c1): updates %v, want [c2]", updateIDs(u1))
	}
	if err := checkUpdate("UpdateContainer(c1)", u1[0], "c2", 256, false); err != nil {
		return err
	}

	// (b) UpdateContainer(c3) asks to update c3 itself: supersedes the request
	r3, err := h.a.UpdateContainer(bg, req("c3", map[string]string{"interop/update": "c3"}))
	if err != nil {
		return fmt.Errorf("UpdateContainer(c3): %w", err)
	}
	u3 := nonNil(r3.GetUpdate())
	if len(u3) != 1 {
		return fmt.Errorf("UpdateContainer(c3): updates %v, want [c3]", updateIDs(u3))
	}
	if err := checkUpdate("UpdateContainer(c3)", u3[0], "c3", 256, false); err != nil {
		return err
	}
	res := u3[0].GetLinux().GetResources()
	if res.GetMemory().GetLimit().GetValue() != 1<<30 || res.GetCpu().GetCpus() != "2-3" {
		return fmt.Errorf("UpdateContainer(c3): merged resources lost the requested values: memory limit %v cpus %q",
			res.GetMemory().GetLimit(), res.GetCpu().GetCpus())
	}

	// (c) StopContainer(c4) in a pod whose annotations ask to update c2,
	// ignoring failures
	pod2 := mkPod("pod-s", map[string]string{"interop/update": "c2", "interop/ignore-failure": "yes"})
	r4, err := h.a.StopContainer(bg, &api.StopContainerRequest{Pod: pod2, Container: withState(mkCtr("c4", pod2.Id, nil), running)})
	if err != nil {
		return fmt.Errorf("StopContainer(c4): %w", err)
	}
	if len(r4.GetUpdate()) != 1 {
		return fmt.Errorf("StopContainer(c4): updates %v, want [c2]", updateIDs(nonNil(r4.GetUpdate())))
	}
	if err := checkUpdate("StopContainer(c4)", r4.Update[0], "c2", 256, true); err != nil {
		return err
	}

	// (d) StopContainer(c5) with nothing asked: no updates
	r5, err := h.a.StopContainer(bg, &api.StopContainerRequest{Pod: pod, Container: withState(mkCtr("c5", pod.Id, nil), running)})
	if err != nil {
		return fmt.Errorf("StopContainer(c5): %w", err)
	}
	if len(r5.GetUpdate()) != 0 {
		return fmt.Errorf("StopContainer(c5): unexpected updates %v", updateIDs(nonNil(r5.GetUpdate())))
	}

	es, err := readLog(logE)
	if err != nil {
		return err
	}
	return checkEventSeq(es, []expectLine{
		{"UpdateContainer", "pod-u", "c1"},
		{"UpdateContainer", "pod-u", "c3"},
		{"StopContainer", "pod-s", "c4"},
		{"StopContainer", "pod-u", "c5"},
	})
}

// ---------------------------------------------------------------------------
// 7. message-sizes

var messageSizes = []int{0, 1, 4000, 4096, 4097, 65536, 1 << 20, 4<<20 - 64<<10}

func scMessageSizes(h *H) error {
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("size.log")
	if _, err := h.external(h.plugin, "size", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	pod := mkPod("pod-size", nil)
	var want []expectLine

	// replies
	for _, n := range messageSizes {
		id := fmt.Sprintf("reply-%d", n)
		resp, err := h.create(pod, mkCtr(id, pod.Id, map[string]string{"interop/reply-bytes": strconv.Itoa(n)}))
		if err != nil {
			return fmt.Errorf("reply of %d bytes: CreateContainer: %w", n, err)
		}
		v, ok := resp.GetAdjust().GetAnnotations()["size.interop/blob"]
		if !ok || len(v) != n || strings.Trim(v, "x") != "" {
			return fmt.Errorf("reply of %d bytes: got annotation present=%v with %d bytes", n, ok, len(v))
		}
		want = append(want, expectLine{"CreateContainer", pod.Id, id})
	}
	// requests (CreateContainer and a StateChange event)
	for _, n := range messageSizes {
		id := fmt.Sprintf("request-%d", n)
		mk := func() *api.Container {
			return mkCtr(id, pod.Id, map[string]string{"interop/pad": strings.Repeat("r", n)})
		}
		resp, err := h.create(pod, mk())
		if err != nil {
			return fmt.Errorf("request of %d bytes: CreateContainer: %w", n, err)
		}
		if err := checkEmptyAdjustment(fmt.Sprintf("request of %d bytes", n), resp); err != nil {
			return err
		}
		if err := h.a.StartContainer(bg, &api.StateChangeEvent{Pod: pod, Container: mk()}); err != nil {
			return fmt.Errorf("request of %d bytes: StartContainer: %w", n, err)
		}
		want = append(want, expectLine{"CreateContainer", pod.Id, id}, expectLine{"StartContainer", pod.Id, id})
	}
	// both ways at once
	id := "both-1MiB"
	resp, err := h.create(pod, mkCtr(id, pod.Id, map[string]string{
		"interop/pad": strings.Repeat("r", 1<<20), "interop/reply-bytes": strconv.Itoa(1 << 20)}))
	if err != nil {
		return fmt.Errorf("1 MiB request + 1 MiB reply: %w", err)
	}
	if len(resp.GetAdjust().GetAnnotations()["size.interop/blob"]) != 1<<20 {
		return errors.New("1 MiB request + 1 MiB reply: reply annotation has the wrong size")
	}
	want = append(want, expectLine{"CreateContainer", pod.Id, id})

	if err := h.mustBeRegistered("10-size"); err != nil {
		return err
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	return checkEventSeq(es, want)
}

// ---------------------------------------------------------------------------
// 8. unsolicited-update

func scUnsolicitedUpdate(h *H) error {
	h.mu.Lock()
	h.failUpdates = true // report every unsolicited update back as failed
	h.mu.Unlock()
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("unsol.log")
	if _, err := h.external(h.plugin, "unsol", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	pod := mkPod("pod-un", nil)
	resp, err := h.create(pod, mkCtr("ctr-un", pod.Id, map[string]string{"interop/unsolicited": "ctr-other"}))
	if err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	if err := h.mustBeRegistered("10-unsol"); err != nil {
		return fmt.Errorf("%v: dropped during CreateContainer (an UpdateContainers call made synchronously from the handler deadlocks a v0.9.0 runtime)", err)
	}
	if err := checkEmptyAdjustment("CreateContainer", resp); err != nil {
		return err
	}
	select {
	case us := <-h.unsolicited:
		if len(us) != 1 {
			return fmt.Errorf("updateFn got %d updates %v, want 1", len(us), updateIDs(us))
		}
		if err := checkUpdate("unsolicited update", us[0], "ctr-other", 128, false); err != nil {
			return err
		}
	case <-time.After(3 * time.Second):
		return errors.New("updateFn never received the unsolicited update")
	}
	if _, err := waitEntries(logE, 3*time.Second, "Unsolicited line", func(es []entry) bool {
		return len(filterEvent(es, "Unsolicited")) > 0
	}); err != nil {
		return err
	}
	es, _ := readLog(logE)
	u := filterEvent(es, "Unsolicited")[0]
	if u.kv["ctr"] != "ctr-other" || u.kv["failed"] != "1" || u.kv["err"] != "-" {
		return fmt.Errorf("plugin log %q, want \"Unsolicited ctr=ctr-other failed=1 err=-\"", u.raw)
	}
	// still registered: a following CreateContainer reaches it
	if _, err := h.create(pod, mkCtr("ctr-after", pod.Id, nil)); err != nil {
		return fmt.Errorf("CreateContainer after the unsolicited update: %w", err)
	}
	es, err = readLog(logE)
	if err != nil {
		return err
	}
	return checkEventSeq(es, []expectLine{
		{"CreateContainer", "pod-un", "ctr-un"},
		{"CreateContainer", "pod-un", "ctr-after"},
	})
}

// ---------------------------------------------------------------------------
// 9. handler-failure

func scHandlerFailure(h *H) error {
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("fail.log")
	if _, err := h.external(h.plugin, "fail", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	okPod := mkPod("pod-ok", nil)
	failPod := mkPod("pod-fail", map[string]string{"interop/fail": "yes"})
	failCtr := func() *api.Container {
		return withState(mkCtr("ctr-fail", okPod.Id, map[string]string{"interop/fail": "yes"}), api.ContainerState_CONTAINER_RUNNING)
	}
	expectFail := func(what string, err error) error {
		if err == nil {
			return fmt.Errorf("%s succeeded, want error %q", what, failMsg)
		}
		if !strings.Contains(err.Error(), failMsg) {
			return fmt.Errorf("%s: error %q does not carry %q", what, err, failMsg)
		}
		return nil
	}
	resp, err := h.create(okPod, failCtr())
	if e := expectFail("CreateContainer", err); e != nil {
		return e
	}
	if resp != nil {
		return errors.New("CreateContainer failed but returned a response")
	}
	if e := expectFail("RunPodSandbox", h.a.RunPodSandbox(bg, &api.StateChangeEvent{Pod: failPod})); e != nil {
		return e
	}
	if e := expectFail("StartContainer", h.a.StartContainer(bg, &api.StateChangeEvent{Pod: okPod, Container: failCtr()})); e != nil {
		return e
	}
	_, err = h.a.UpdateContainer(bg, &api.UpdateContainerRequest{Pod: okPod, Container: failCtr(), LinuxResources: &api.LinuxResources{}})
	if e := expectFail("UpdateContainer", err); e != nil {
		return e
	}
	_, err = h.a.StopContainer(bg, &api.StopContainerRequest{Pod: okPod, Container: failCtr()})
	if e := expectFail("StopContainer", err); e != nil {
		return e
	}
	if err := h.mustBeRegistered("10-fail"); err != nil {
		return fmt.Errorf("%v after handler errors", err)
	}
	resp, err = h.create(okPod, mkCtr("ctr-ok", okPod.Id, map[string]string{"interop/adjust": "env"}))
	if err != nil {
		return fmt.Errorf("CreateContainer after failures: %w", err)
	}
	if resp.GetAdjust().GetAnnotations()["fail.interop/added"] != "yes" {
		return fmt.Errorf("CreateContainer after failures: annotations %v", resp.GetAdjust().GetAnnotations())
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	return checkEventSeq(es, []expectLine{
		{"CreateContainer", "pod-ok", "ctr-fail"},
		{"RunPodSandbox", "pod-fail", "-"},
		{"StartContainer", "pod-ok", "ctr-fail"},
		{"UpdateContainer", "pod-ok", "ctr-fail"},
		{"StopContainer", "pod-ok", "ctr-fail"},
		{"CreateContainer", "pod-ok", "ctr-ok"},
	})
}

// ---------------------------------------------------------------------------
// 10. slow-handler-dropped

func scSlowHandlerDropped(h *H) error {
	const timeout = 500 * time.Millisecond
	adaptation.SetPluginRequestTimeout(timeout)
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("slow.log")
	var extra []string
	if opts.deadlineGuard {
		extra = []string{"-deadline-guard"} // asks the plugin to enable its guard
	}
	p, err := h.external(h.plugin, "slow", "10", "log="+logE+"\n", extra...)
	if err != nil {
		return err
	}
	if !opts.deadlineGuard {
		h.expectDrops()
	}
	pod := mkPod("pod-slow", nil)
	start := time.Now()
	resp, err := h.create(pod, mkCtr("ctr-slow", pod.Id, map[string]string{"interop/sleep-ms": "1500", "interop/adjust": "env"}))
	elapsed := time.Since(start)
	if elapsed >= 1400*time.Millisecond {
		return fmt.Errorf("CreateContainer took %v: the %v request timeout did not apply", elapsed, timeout)
	}

	if opts.deadlineGuard {
		// The plugin answers by itself before the deadline (error or empty
		// reply) and stays registered.
		if e := h.mustBeRegistered("10-slow"); e != nil {
			return fmt.Errorf("deadline guard: %v (CreateContainer error: %v)", e, err)
		}
		if l, bad := unexpectedLogLine(logs.since(h.logStart)); bad {
			return fmt.Errorf("deadline guard: unexpected adaptation log line: %s", l.msg)
		}
		time.Sleep(1200 * time.Millisecond) // let the slow handler finish
		if _, err := h.create(pod, mkCtr("ctr-next", pod.Id, nil)); err != nil {
			return fmt.Errorf("deadline guard: next CreateContainer: %w", err)
		}
		es, _ := readLog(logE)
		return checkEventSeq(es, []expectLine{
			{"CreateContainer", "pod-slow", "ctr-slow"},
			{"CreateContainer", "pod-slow", "ctr-next"},
		})
	}

	if elapsed < timeout-50*time.Millisecond {
		return fmt.Errorf("CreateContainer returned after %v, before the %v timeout (err %v)", elapsed, timeout, err)
	}
	if err != nil {
		return fmt.Errorf("CreateContainer: %v (v0.9.0 swallows fatal plugin errors and returns success)", err)
	}
	if err := checkEmptyAdjustment("CreateContainer of the dropped plugin", resp); err != nil {
		return err
	}
	if _, err := h.waitLogMsg(regexp.MustCompile(`closing plugin 10-slow, failed to handle CreateContainer request`), time.Second); err != nil {
		return err
	}
	if _, ok, err := h.findPlugin("10-slow"); err != nil || ok {
		return fmt.Errorf("plugin still listed after the timeout (err %v)", err)
	}
	if !p.waitExit(3 * time.Second) {
		return errors.New("plugin process did not exit after the runtime closed its connection")
	}
	es, _ := readLog(logE)
	if err := checkEventSeq(es, []expectLine{{"CreateContainer", "pod-slow", "ctr-slow"}}); err != nil {
		return err
	}
	resp, err = h.create(pod, mkCtr("ctr-next", pod.Id, nil))
	if err != nil {
		return fmt.Errorf("CreateContainer without plugins: %w", err)
	}
	return checkEmptyAdjustment("CreateContainer without plugins", resp)
}

// ---------------------------------------------------------------------------
// 11. plugin-restart

func scPluginRestart(h *H) error {
	pods := []*api.PodSandbox{mkPod("pod-r0", nil), mkPod("pod-r1", nil)}
	ctrs := []*api.Container{
		withState(mkCtr("ctr-r0", "pod-r0", nil), api.ContainerState_CONTAINER_RUNNING),
		withState(mkCtr("ctr-r1", "pod-r0", nil), api.ContainerState_CONTAINER_RUNNING),
		withState(mkCtr("ctr-r2", "pod-r1", nil), api.ContainerState_CONTAINER_CREATED),
	}
	h.setState(pods, ctrs)
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("restart.log")
	cfg := "log=" + logE + "\n"
	p1, err := h.external(h.plugin, "restart", "10", cfg)
	if err != nil {
		return err
	}
	h.expectDrops()
	p1.kill()
	if !p1.waitExit(3 * time.Second) {
		return errors.New("killed plugin did not exit")
	}
	if _, err := h.waitLogMsg(regexp.MustCompile(`connection to plugin "10-restart" closed`), 3*time.Second); err != nil {
		return err
	}
	if _, err := h.external(h.plugin, "restart", "10", cfg); err != nil {
		return fmt.Errorf("restarted plugin: %w", err)
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	if err := checkPreamble(es, 0, 2, 3); err != nil {
		return err
	}
	if err := checkPreamble(es, 2, 2, 3); err != nil {
		return fmt.Errorf("after restart: %w", err)
	}
	pod := pods[1]
	if _, err := h.create(pod, mkCtr("ctr-new", pod.Id, nil)); err != nil {
		return fmt.Errorf("CreateContainer after restart: %w", err)
	}
	names, err := h.activePlugins()
	if err != nil {
		return err
	}
	if len(names) != 1 || names[0] != "10-restart" {
		return fmt.Errorf("active plugins %v, want [10-restart]", names)
	}
	es, err = readLog(logE)
	if err != nil {
		return err
	}
	return checkEventSeq(es, []expectLine{{"CreateContainer", "pod-r1", "ctr-new"}})
}

// ---------------------------------------------------------------------------
// 12. launched-plugin-killed

func scLaunchedPluginKilled(h *H) error {
	logE := h.path("victim.log")
	if err := h.installLaunched(h.plugin, "30-victim", "log="+logE+"\n"); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	info, ok, err := h.findPlugin("30-victim")
	if err != nil {
		return err
	}
	if !ok || info.pid <= 0 || info.pid == os.Getpid() {
		return fmt.Errorf("30-victim not listed with a pid (%+v)", info)
	}
	h.expectDrops()
	if err := syscall.Kill(info.pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", info.pid, err)
	}
	if _, err := h.waitLogMsg(regexp.MustCompile(`connection to plugin "30-victim" closed`), 3*time.Second); err != nil {
		return err
	}
	pod := mkPod("pod-v", nil)
	resp, err := h.create(pod, mkCtr("ctr-v", pod.Id, map[string]string{"interop/adjust": "env"}))
	if err != nil {
		return fmt.Errorf("CreateContainer after the kill: %w", err)
	}
	if err := checkEmptyAdjustment("CreateContainer after the kill", resp); err != nil {
		return err
	}
	names, err := h.activePlugins()
	if err != nil {
		return err
	}
	if len(names) != 0 {
		return fmt.Errorf("active plugins %v after the kill, want none", names)
	}
	es, _ := readLog(logE)
	if err := checkPreamble(es, 0, 0, 0); err != nil {
		return err
	}
	return checkEventSeq(es, nil)
}

// ---------------------------------------------------------------------------
// 13. two-plugins-ordering

func scTwoPluginsOrdering(h *H) error {
	binB := h.plugin2
	if binB == "" {
		binB = h.plugin
	}
	if err := h.start(); err != nil {
		return err
	}
	shared := h.path("shared.log")
	// B (index 20) connects first: the invocation order must follow the index.
	if _, err := h.external(binB, "b", "20", "log="+shared+"\nlog-prefix=B\ntag=B\n"); err != nil {
		return fmt.Errorf("plugin B: %w", err)
	}
	if _, err := h.external(h.plugin, "a", "10", "log="+shared+"\nlog-prefix=A\ntag=A\n"); err != nil {
		return fmt.Errorf("plugin A: %w", err)
	}
	names, err := h.activePlugins()
	if err != nil {
		return err
	}
	if len(names) != 2 || names[0] != "10-a" || names[1] != "20-b" {
		return fmt.Errorf("invocation order %v, want [10-a 20-b]", names)
	}
	pod := mkPod("pod-ab", nil)
	res, want, err := h.lifecycle(pod, func() *api.Container {
		return mkCtr("ctr-ab", pod.Id, map[string]string{"interop/adjust": "env"})
	})
	if err != nil {
		return err
	}
	adj := res.create.GetAdjust()
	if adj.GetAnnotations()["A.interop/added"] != "yes" || adj.GetAnnotations()["B.interop/added"] != "yes" ||
		len(adj.GetAnnotations()) != 2 {
		return fmt.Errorf("merged annotations %v, want A.interop/added and B.interop/added", adj.GetAnnotations())
	}
	var env []string
	for _, e := range adj.GetEnv() {
		env = append(env, e.Key+"="+e.Value)
	}
	if strings.Join(env, ",") != "INTEROP_A=yes,INTEROP_B=yes" {
		return fmt.Errorf("merged env %v, want [INTEROP_A=yes INTEROP_B=yes] (A first)", env)
	}

	es, err := readLog(shared)
	if err != nil {
		return err
	}
	for _, pfx := range []string{"A", "B"} {
		var mine []entry
		for _, e := range es {
			if e.prefix == pfx {
				mine = append(mine, e)
			}
		}
		if err := checkPreamble(mine, 0, 0, 0); err != nil {
			return fmt.Errorf("plugin %s: %w", pfx, err)
		}
	}
	got := eventLines(es)
	if len(got) != 2*len(want) {
		return fmt.Errorf("shared log has %d event lines, want %d: %s", len(got), 2*len(want), summarize(got))
	}
	for i, w := range want {
		for j, pfx := range []string{"A", "B"} {
			g := got[2*i+j]
			if g.prefix != pfx || g.event != w.event || g.kv["pod"] != w.pod || g.kv["ctr"] != w.ctr {
				return fmt.Errorf("shared log line %d is %q, want \"%s %s pod=%s ctr=%s\" (A must see each event before B)",
					2*i+j+1, g.raw, pfx, w.event, w.pod, w.ctr)
			}
		}
	}
	return nil
}
