package main

// Scenarios about what plugins hand back: adjustments, updates, message
// sizes, unsolicited updates and handler failures.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/api"
)

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
		if err := h.startContainer(pod, mk()); err != nil {
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
	if e := expectFail("RunPodSandbox", h.runPodSandbox(failPod)); e != nil {
		return e
	}
	if e := expectFail("StartContainer", h.startContainer(okPod, failCtr())); e != nil {
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
