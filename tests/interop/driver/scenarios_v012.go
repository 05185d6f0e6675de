package main

// Scenarios for what NRI added to the plugin API since v0.9: pod sandbox
// updates, the v0.10+ adjustments, validation, and containers with the new
// fields. Each one skips, with its reason, where the adaptation or a plugin
// cannot have it.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// needAdditions skips unless every plugin binary has the contract's v0.10+
// additions.
func (h *H) needAdditions(bins ...string) error {
	for _, b := range bins {
		if !h.hasAdditions(b) {
			return skipf("%s is built on NRI %s, without the contract's v0.10+ additions", b, h.nriOf(b))
		}
	}
	return nil
}

// needAdaptation skips unless the adaptation is min or newer.
func needAdaptation(min, what string) error {
	if !atLeast(adaptationVersion, min) {
		return skipf("%s: needs an NRI %s or newer runtime, this adaptation is %s", what, min, adaptationVersion)
	}
	return nil
}

// ---------------------------------------------------------------------------
// pod-sandbox-update

func scPodSandboxUpdate(h *H) error {
	if err := needAdaptation("v0.10.0", "UpdatePodSandbox and PostUpdatePodSandbox"); err != nil {
		return err
	}
	if err := h.needAdditions(h.plugin); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	logA, logB := h.path("podupd.log"), h.path("onlyupd.log")
	if _, err := h.external(h.plugin, "podupd", "10", "log="+logA+"\n"); err != nil {
		return err
	}
	if _, err := h.external(h.plugin, "onlyupd", "11", "log="+logB+"\nevents=updatepodsandbox\n"); err != nil {
		return err
	}
	if info, _, err := h.findPlugin("11-onlyupd"); err != nil {
		return err
	} else if want := api.MustParseEventMask("updatepodsandbox"); info.events != want {
		return fmt.Errorf("11-onlyupd subscribed to 0x%x, want 0x%x", int32(info.events), int32(want))
	}
	pod := mkPod("pod-upd", nil)
	overhead := &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(4)}}
	res := &api.LinuxResources{
		Cpu:    &api.LinuxCPU{Shares: api.UInt64(2048), Quota: api.Int64(200000), Period: api.UInt64(100000)},
		Memory: &api.LinuxMemory{Limit: api.Int64(1 << 30)},
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"RunPodSandbox", func() error { return h.runPodSandbox(pod) }},
		{"UpdatePodSandbox", func() error { return h.updatePodSandbox(pod, overhead, res) }},
		{"PostUpdatePodSandbox", func() error { return h.postUpdatePodSandbox(pod) }},
		{"StopPodSandbox", func() error { return h.stopPodSandbox(pod) }},
		{"RemovePodSandbox", func() error { return h.removePodSandbox(pod) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	// a failing handler fails both (10-podupd fails first: 11 is not called)
	failPod := mkPod("pod-updfail", map[string]string{"interop/fail": "yes"})
	if err := h.updatePodSandbox(failPod, overhead, res); err == nil || !strings.Contains(err.Error(), failMsg) {
		return fmt.Errorf("UpdatePodSandbox of a pod asking interop/fail: error %v, want %q", err, failMsg)
	}
	if err := h.postUpdatePodSandbox(failPod); err == nil || !strings.Contains(err.Error(), failMsg) {
		return fmt.Errorf("PostUpdatePodSandbox of a pod asking interop/fail: error %v, want %q", err, failMsg)
	}
	for _, n := range []string{"10-podupd", "11-onlyupd"} {
		if err := h.mustBeRegistered(n); err != nil {
			return err
		}
	}
	es, err := readLog(logA)
	if err != nil {
		return err
	}
	if err := checkEventSeq(es, []expectLine{
		{"RunPodSandbox", "pod-upd", "-"},
		{"UpdatePodSandbox", "pod-upd", "-"},
		{"PostUpdatePodSandbox", "pod-upd", "-"},
		{"StopPodSandbox", "pod-upd", "-"},
		{"RemovePodSandbox", "pod-upd", "-"},
		{"UpdatePodSandbox", "pod-updfail", "-"},
		{"PostUpdatePodSandbox", "pod-updfail", "-"},
	}); err != nil {
		return fmt.Errorf("10-podupd: %w", err)
	}
	if es, err = readLog(logB); err != nil {
		return err
	}
	if err := checkEventSeq(es, []expectLine{{"UpdatePodSandbox", "pod-upd", "-"}}); err != nil {
		return fmt.Errorf("11-onlyupd: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// adjust-v012

func scAdjustV012(h *H) error {
	if err := h.needAdditions(h.plugin); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	if _, err := h.external(h.plugin, "v12", "10", "log="+h.path("v12.log")+"\n"); err != nil {
		return err
	}
	const t = "v12"
	pod := mkPod("pod-v12", nil)
	var omit []string
	if sysctlAdjustmentPanics() {
		// The v0.11 adaptation never makes the merged reply's sysctl map:
		// any sysctl adjustment panics in CreateContainer (fixed in
		// v0.12.0), whichever plugin sends it. Prove that, then check every
		// other kind without it.
		_, err := h.createRecovered(pod, mkCtr("ctr-panic", pod.Id, map[string]string{"interop/adjust": "v012"}))
		if err == nil || !strings.Contains(err.Error(), "assignment to entry in nil map") {
			return fmt.Errorf("CreateContainer with a sysctl adjustment: error %v, want the %s adaptation's panic (nil sysctl map)", err, adaptationVersion)
		}
		omit = []string{"sysctl"}
	}
	want := expectedV012Adjustment(t, omit...)
	// the expectation holds exactly the fields the linked API has
	for _, f := range v012Fields {
		kept := atLeast(adaptationVersion, f.since) && !hasString(omit, strings.TrimPrefix(f.path, "linux."))
		if kept != hasPath(want, f.path) {
			return fmt.Errorf("harness bug: expected adjustment: %s present=%v on %s", f.path, hasPath(want, f.path), adaptationVersion)
		}
	}
	ann := map[string]string{"interop/adjust": "v012"}
	if len(omit) > 0 {
		ann["interop/adjust-omit"] = strings.Join(omit, ",")
	}
	ctr := mkCtr("ctr-v12", pod.Id, ann)
	// a container with a sysctl already (an adjustment adds to it)
	mergeText(ctr, `linux { sysctl { key: "net.ipv4.ip_unprivileged_port_start" value: "0" } }`)
	origArgs := append([]string(nil), ctr.Args...)
	resp, err := h.createRecovered(pod, ctr)
	if err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	if d := diffProto("adjust", want, resp.GetAdjust()); len(d) > 0 {
		return fmt.Errorf("adjustment differs (adaptation %s): %s", adaptationVersion, joinDiffs(d))
	}
	if len(resp.Update) != 0 || len(resp.Evict) != 0 {
		return fmt.Errorf("unexpected updates %v / evictions %d", updateIDs(resp.Update), len(resp.Evict))
	}

	// The adaptation applies what it knows to the request's container.
	if !atLeast(adaptationVersion, "v0.10.0") {
		if strings.Join(ctr.Args, " ") != strings.Join(origArgs, " ") {
			return fmt.Errorf("request args %q changed by a runtime that has no args adjustment", ctr.Args)
		}
		return nil
	}
	var problems []string
	if got := strings.Join(ctr.Args, " "); got != "/bin/"+t+" --interop" {
		problems = append(problems, fmt.Sprintf("args %q", ctr.Args))
	}
	lin := ctr.GetLinux().ProtoReflect()
	applied := []string{"io_priority", "seccomp_policy"}
	if atLeast(adaptationVersion, "v0.11.0") {
		applied = append(applied, "scheduler") // v0.11.0 brought it
	}
	for _, f := range applied {
		fd := lin.Descriptor().Fields().ByName(protoreflect.Name(f))
		_, w, _ := lookupPath(want.ProtoReflect(), "linux."+f)
		if fd == nil || !lin.Has(fd) {
			problems = append(problems, "linux."+f+" not applied")
			continue
		}
		if d := diffProto("linux."+f, w.Message().Interface(), lin.Get(fd).Message().Interface()); len(d) > 0 {
			problems = append(problems, joinDiffs(d))
		}
	}
	// sysctls and net devices arrived in v0.11.0; v0.10.0 has neither in
	// its container nor in its adjustment
	if len(omit) == 0 && atLeast(adaptationVersion, "v0.11.0") {
		if _, v, ok := lookupPath(ctr.ProtoReflect(), "linux.sysctl"); !ok || v.Map().Len() != 2 ||
			v.Map().Get(protoMapKey("net.core.somaxconn")).String() != "1024" {
			problems = append(problems, "sysctl net.core.somaxconn=1024 not added to the container's one sysctl")
		}
	}
	if atLeast(adaptationVersion, "v0.11.0") {
		if _, v, ok := lookupPath(ctr.ProtoReflect(), "linux.net_devices"); !ok || !v.Map().Has(protoMapKey(t+"-host0")) {
			problems = append(problems, "net device "+t+"-host0 not applied")
		}
	}
	var netns []string
	for _, n := range ctr.GetLinux().GetNamespaces() {
		if n.Type == "network" {
			netns = append(netns, n.Path)
		}
	}
	if len(netns) != 1 || netns[0] != "/var/run/netns/"+t {
		problems = append(problems, fmt.Sprintf("network namespaces %q, want [/var/run/netns/%s]", netns, t))
	}
	if len(problems) > 0 {
		return fmt.Errorf("adjusted request: %s", strings.Join(problems, "; "))
	}
	return nil
}

// sysctlAdjustmentPanics: the v0.11 adaptation panics on any sysctl
// adjustment (it never makes the merged reply's sysctl map). v0.10 has no
// sysctl adjustment: it drops the field unread.
func sysctlAdjustmentPanics() bool {
	return atLeast(adaptationVersion, "v0.11.0") && !atLeast(adaptationVersion, "v0.12.0")
}

// createRecovered is create, turning a panic of the adaptation into an
// error (the adaptation's deferred unlock runs while it unwinds).
func (h *H) createRecovered(pod *api.PodSandbox, ctr *api.Container) (resp *api.CreateContainerResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("adaptation panicked: %v", r)
		}
	}()
	return h.create(pod, ctr)
}

// ---------------------------------------------------------------------------
// validation

var rejectedRE = regexp.MustCompile(`validator "([^"]+)" rejected container adjustment, reason: (.*)$`)

func validationPreconditions(h *H, bins ...string) error {
	if err := needAdaptation("v0.10.0", "ValidateContainerAdjustment"); err != nil {
		return err
	}
	return h.needAdditions(bins...)
}

// validate-accept: an adjuster that does not validate and a validator that
// does nothing else; the validator sees both in the request's plugin list.
func scValidateAccept(h *H) error {
	if err := validationPreconditions(h, h.plugin); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	logA, logV := h.path("adj.log"), h.path("val.log")
	if _, err := h.external(h.plugin, "adj", "10", "log="+logA+"\nevents=createcontainer\n"); err != nil {
		return err
	}
	if _, err := h.external(h.plugin, "val", "20", "log="+logV+"\nevents=validatecontaineradjustment\n"); err != nil {
		return err
	}
	info, _, err := h.findPlugin("20-val")
	if err != nil {
		return err
	}
	if want := api.MustParseEventMask("validatecontaineradjustment"); info.events != want {
		return fmt.Errorf("20-val subscribed to 0x%x, want 0x%x", int32(info.events), int32(want))
	}
	pod := mkPod("pod-val", nil)
	resp, err := h.create(pod, mkCtr("ctr-acc", pod.Id, map[string]string{"interop/adjust": "env", "interop/validate": "accept"}))
	if err != nil {
		return fmt.Errorf("CreateContainer validated by an accepting validator: %w", err)
	}
	if env := resp.GetAdjust().GetEnv(); len(env) != 1 || env[0].Key != "INTEROP_adj" {
		return fmt.Errorf("adjustment env %v, want [INTEROP_adj=yes]", env)
	}
	// default verdict (no annotation): accept
	if _, err := h.create(pod, mkCtr("ctr-dflt", pod.Id, nil)); err != nil {
		return fmt.Errorf("CreateContainer with no verdict annotation: %w", err)
	}
	es, err := readLog(logV)
	if err != nil {
		return err
	}
	if err := checkLines(es, "ValidateContainerAdjustment", []string{
		"ValidateContainerAdjustment pod=pod-val ctr=ctr-acc plugins=10-adj,20-val",
		"ValidateContainerAdjustment pod=pod-val ctr=ctr-dflt plugins=10-adj,20-val",
	}); err != nil {
		return fmt.Errorf("20-val: %w", err)
	}
	if err := checkEventSeq(es, nil); err != nil {
		return fmt.Errorf("20-val (subscribed to validation only): %w", err)
	}
	if es, err = readLog(logA); err != nil {
		return err
	}
	if err := checkLines(es, "ValidateContainerAdjustment", nil); err != nil {
		return fmt.Errorf("10-adj (not a validator): %w", err)
	}
	return checkEventSeq(es, []expectLine{{"CreateContainer", "pod-val", "ctr-acc"}, {"CreateContainer", "pod-val", "ctr-dflt"}})
}

// rejectScenario: a validator rejecting with a short or a 16 KiB reason.
func rejectScenario(verdict string, reason func(tag string) string) func(*H) error {
	return func(h *H) error {
		if err := validationPreconditions(h, h.plugin); err != nil {
			return err
		}
		if err := h.start(); err != nil {
			return err
		}
		logE := h.path("val.log")
		if _, err := h.external(h.plugin, "val", "10", "log="+logE+"\n"); err != nil {
			return err
		}
		pod := mkPod("pod-rej", nil)
		resp, err := h.create(pod, mkCtr("ctr-rej", pod.Id, map[string]string{"interop/adjust": "env", "interop/validate": verdict}))
		if err == nil {
			return fmt.Errorf("CreateContainer rejected by the validator succeeded (adjustment %v)", resp.GetAdjust().GetEnv())
		}
		m := rejectedRE.FindStringSubmatch(err.Error())
		if m == nil {
			return fmt.Errorf("CreateContainer: error %q, want \"validator \\\"10-val\\\" rejected container adjustment, reason: ...\"", trunc(err.Error(), 300))
		}
		if want := reason("val"); m[1] != "10-val" || m[2] != want {
			return fmt.Errorf("rejection by %q with a reason of %d bytes %q, want 10-val with %d bytes %q",
				m[1], len(m[2]), trunc(m[2], 80), len(want), trunc(want, 80))
		}
		if err := h.mustBeRegistered("10-val"); err != nil {
			return fmt.Errorf("%v after rejecting", err)
		}
		if _, err := h.create(pod, mkCtr("ctr-ok", pod.Id, nil)); err != nil {
			return fmt.Errorf("CreateContainer after the rejection: %w", err)
		}
		es, err := readLog(logE)
		if err != nil {
			return err
		}
		if err := checkLines(es, "ValidateContainerAdjustment", []string{
			"ValidateContainerAdjustment pod=pod-rej ctr=ctr-rej plugins=10-val",
			"ValidateContainerAdjustment pod=pod-rej ctr=ctr-ok plugins=10-val",
		}); err != nil {
			return err
		}
		return checkEventSeq(es, []expectLine{{"CreateContainer", "pod-rej", "ctr-rej"}, {"CreateContainer", "pod-rej", "ctr-ok"}})
	}
}

func shortReason(tag string) string { return "interop: " + tag + " rejects" }

func longReason(tag string) string {
	r := "interop: " + tag + " rejects "
	return r + strings.Repeat("x", 16384-len(r))
}

// validate-two-validators: both validators are consulted, concurrently,
// with the full plugin list; a rejection by both names one of them.
func scValidateTwoValidators(h *H) error {
	binB := h.plugin2
	if binB == "" {
		binB = h.plugin
	}
	if err := validationPreconditions(h, h.plugin, binB); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	shared := h.path("shared.log")
	if _, err := h.external(binB, "b", "20", "log="+shared+"\nlog-prefix=B\ntag=B\n"); err != nil {
		return fmt.Errorf("plugin B: %w", err)
	}
	if _, err := h.external(h.plugin, "a", "10", "log="+shared+"\nlog-prefix=A\ntag=A\n"); err != nil {
		return fmt.Errorf("plugin A: %w", err)
	}
	pod := mkPod("pod-two", nil)
	resp, err := h.create(pod, mkCtr("ctr-acc", pod.Id, map[string]string{"interop/adjust": "env"}))
	if err != nil {
		return fmt.Errorf("CreateContainer accepted by both: %w", err)
	}
	var env []string
	for _, e := range resp.GetAdjust().GetEnv() {
		env = append(env, e.Key)
	}
	if strings.Join(env, ",") != "INTEROP_A,INTEROP_B" {
		return fmt.Errorf("merged env %v, want [INTEROP_A INTEROP_B]", env)
	}
	_, err = h.create(pod, mkCtr("ctr-rej", pod.Id, map[string]string{"interop/validate": "reject"}))
	if err == nil {
		return errors.New("CreateContainer rejected by both validators succeeded")
	}
	m := rejectedRE.FindStringSubmatch(err.Error())
	switch {
	case m == nil:
		return fmt.Errorf("CreateContainer: error %q, want a validator's rejection", trunc(err.Error(), 300))
	case m[1] == "10-a" && m[2] == shortReason("A"), m[1] == "20-b" && m[2] == shortReason("B"):
	default:
		return fmt.Errorf("rejection by %q with reason %q, want 10-a or 20-b with its own reason", m[1], m[2])
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
		if err := checkLines(mine, "ValidateContainerAdjustment", []string{
			pfx + " ValidateContainerAdjustment pod=pod-two ctr=ctr-acc plugins=10-a,20-b",
			pfx + " ValidateContainerAdjustment pod=pod-two ctr=ctr-rej plugins=10-a,20-b",
		}); err != nil {
			return fmt.Errorf("plugin %s: %w", pfx, err)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// container-fields

func scContainerFields(h *H) error {
	if err := needAdaptation("v0.10.0", "the container fields added since v0.9"); err != nil {
		return err
	}
	if err := h.needAdditions(h.plugin); err != nil {
		return err
	}
	// a chunked state (over 4 MiB) of containers with every new field; the
	// first and the last ask for the Fields line
	const nPods, nCtrs = 24, 96
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	for i := 0; i < nPods; i++ {
		pods = append(pods, mkPod(fmt.Sprintf("pod-%02d", i), map[string]string{"interop/pad": strings.Repeat("p", 16<<10)}))
	}
	for i := 0; i < nCtrs; i++ {
		ann := map[string]string{"interop/pad": strings.Repeat("c", 48<<10)}
		if i == 0 || i == nCtrs-1 {
			ann["interop/fields"] = "yes"
		}
		c := withNewFields(mkCtr(fmt.Sprintf("ctr-%02d", i), pods[i%nPods].Id, ann))
		ctrs = append(ctrs, withState(c, api.ContainerState_CONTAINER_RUNNING))
	}
	h.setState(pods, ctrs)
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("fields.log")
	if _, err := h.external(h.plugin, "fields", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	if h.countLogMsg(regexp.MustCompile(`oversized message, retrying in smaller chunks`)) == 0 {
		return errors.New("adaptation did not split the sync request (state not over 4 MiB?)")
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	if err := h.checkPreamble(es, 0, nPods, nCtrs, h.plugin); err != nil {
		return err
	}
	if err := checkLines(es, "Fields", []string{fieldsLine(ctrs[0]), fieldsLine(ctrs[nCtrs-1])}); err != nil {
		return fmt.Errorf("Synchronize: %w", err)
	}

	pod := mkPod("pod-fields", nil)
	ctr := withNewFields(mkCtr("ctr-fields", pod.Id, map[string]string{"interop/fields": "yes"}))
	want := fieldsLine(ctr)
	if _, err := h.create(pod, ctr); err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	es, err = waitEntries(logE, 2*time.Second, "3 Fields lines", func(es []entry) bool {
		return len(filterEvent(es, "Fields")) >= 3
	})
	if err != nil {
		return err
	}
	if got := filterEvent(es, "Fields")[2].raw; got != want {
		return fmt.Errorf("CreateContainer: plugin logged\n  %s\nwant\n  %s", got, want)
	}
	return nil
}
