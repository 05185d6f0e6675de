package main

// The scenario list, the helpers scenarios share, and the scenarios about
// registration, synchronization and the lifecycle events.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

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
	// NRI v0.10 and newer (scenarios_v012.go, scenarios_versions.go)
	{"adjust-v012", scAdjustV012},
	{"pod-sandbox-update", scPodSandboxUpdate},
	{"validate-accept", scValidateAccept},
	{"validate-reject", rejectScenario("reject", shortReason)},
	{"validate-reject-long", rejectScenario("reject-long", longReason)},
	{"validate-two-validators", scValidateTwoValidators},
	{"container-fields", scContainerFields},
	{"new-events-old-runtime", scNewEventsOldRuntime},
	{"new-events-delivered", scNewEventsDelivered},
	{"required-event", scRequiredEvent},
	{"per-event-rpcs", perEventRPCs(true)},
	{"per-event-rpcs-no-recorder", perEventRPCs(false)},
	{"failure-policy-none", failurePolicy("none")},
	{"failure-policy-fail-request", failurePolicy("fail-request")},
	{"failure-policy-keep-connected", failurePolicy("keep-connected")},
	{"failure-policy-both", failurePolicy("fail-request,keep-connected")},
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
		{"RunPodSandbox", func() error { return h.runPodSandbox(pod) }},
		{"CreateContainer", func() error {
			res.create, err = h.a.CreateContainer(bg, &api.CreateContainerRequest{Pod: pod, Container: mk()})
			return err
		}},
		{"PostCreateContainer", func() error {
			return h.postCreateContainer(pod, withState(mk(), created))
		}},
		{"StartContainer", func() error {
			return h.startContainer(pod, withState(mk(), created))
		}},
		{"PostStartContainer", func() error {
			return h.postStartContainer(pod, withState(mk(), running))
		}},
		{"UpdateContainer", func() error {
			res.update, err = h.a.UpdateContainer(bg, &api.UpdateContainerRequest{
				Pod: pod, Container: withState(mk(), running), LinuxResources: newRes})
			return err
		}},
		{"PostUpdateContainer", func() error {
			return h.postUpdateContainer(pod, withState(mk(), running))
		}},
		{"StopContainer", func() error {
			res.stop, err = h.a.StopContainer(bg, &api.StopContainerRequest{Pod: pod, Container: withState(mk(), running)})
			return err
		}},
		{"RemoveContainer", func() error {
			return h.removeContainer(pod, withState(mk(), stopped))
		}},
		{"StopPodSandbox", func() error { return h.stopPodSandbox(pod) }},
		{"RemovePodSandbox", func() error { return h.removePodSandbox(pod) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return res, want, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return res, want, nil
}

// checkPreamble checks that es starts with Configure (runtime name/version,
// and for a plugin with the v0.10+ additions the runtime's NRI version as
// the plugin knows it: sent by v0.12 adaptations, inferred before) then
// Synchronize with the given counts. bin is the plugin's binary.
func (h *H) checkPreamble(es []entry, at, pods, ctrs int, bin string) error {
	if len(es) < at+2 {
		return fmt.Errorf("plugin log: want Configure and Synchronize at line %d, log: %s", at+1, summarize(es))
	}
	c, s := es[at], es[at+1]
	wantRT := runtimeName + "/" + runtimeVersion
	if c.event != "Configure" || c.kv["pod"] != "-" || c.kv["ctr"] != "-" || c.kv["runtime"] != wantRT {
		return fmt.Errorf("plugin log line %d: got %q, want \"Configure pod=- ctr=- runtime=%s\"", at+1, c.raw, wantRT)
	}
	if want := h.wantConfigureNRI(bin); want != "" && c.kv["nri"] != want {
		how := "sent in Configure"
		if inferredNRI != "" {
			how = "inferred from " + wantRT
		}
		return fmt.Errorf("plugin log line %d: got %q, want nri=%s (the runtime's NRI version, %s)",
			at+1, c.raw, want, how)
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
		case p.events != h.handledMask(h.plugin):
			return fmt.Errorf("%s subscribed to 0x%x, want every event it handles 0x%x", p.name, int32(p.events), int32(h.handledMask(h.plugin)))
		}
	}
	es, err := waitEntries(logA, 2*time.Second, "Configure+Synchronize", func(es []entry) bool { return len(es) >= 2 })
	if err != nil {
		return err
	}
	if err := h.checkPreamble(es, 0, 0, 0, h.plugin); err != nil {
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
	if err := h.checkPreamble(es, 0, 0, 0, h.plugin); err != nil {
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
		if err := h.checkPreamble(es, 0, 3, 5, h.plugin); err != nil {
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
	if err := h.checkPreamble(es, 0, nPods, nCtrs, h.plugin); err != nil {
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
	if err := h.checkPreamble(es, 0, 0, 0, h.plugin); err != nil {
		return err
	}
	if err := checkEventSeq(es, want); err != nil {
		return err
	}
	// A plugin with the v0.10+ additions validates by default where the
	// adaptation can ask it to: once, for the created container, after its
	// CreateContainer.
	var wantVal []string
	if h.validates(h.plugin) {
		wantVal = []string{"ValidateContainerAdjustment pod=pod-life ctr=ctr-life plugins=10-life"}
	}
	if err := checkLines(es, "ValidateContainerAdjustment", wantVal); err != nil {
		return err
	}
	if len(wantVal) > 0 {
		if err := checkOrder(es, "CreateContainer", "ValidateContainerAdjustment", "PostCreateContainer"); err != nil {
			return err
		}
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
	// "pod" means every pod event the plugin handles (the adaptation's own
	// parser has the same keywords), less what the adaptation cannot send
	wantMask := map[string]api.EventMask{
		"10-sub":    api.MustParseEventMask("createcontainer,stopcontainer"),
		"11-podsub": api.MustParseEventMask("pod,RemoveContainer") & h.handledMask(h.plugin),
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
