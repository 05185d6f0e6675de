package main

// Scenarios about plugins that are slow, die or restart, and about two
// plugins at once.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

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
		// dropped at the timeout; its connection closes
		h.expectFatalFailure("10-slow", "CreateContainer", "context deadline exceeded", false)
		h.expectLog(connectionClosedLine("10-slow"))
		if h.deadValidatorFails(h.plugin) {
			// asked to validate the same request after it was closed
			h.expectLog(validatorClosingLine("10-slow", "ttrpc: closed"))
		}
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
	if h.deadValidatorFails(h.plugin) {
		if err == nil || !strings.Contains(err.Error(), "validator plugin 10-slow failed") {
			return fmt.Errorf("CreateContainer: error %v, want \"validator plugin 10-slow failed: ...\" "+
				"(before v0.12.5 the adaptation still asks a validator dropped during CreateContainer to validate)", err)
		}
	} else {
		if err != nil {
			return fmt.Errorf("CreateContainer: %v (the adaptation swallows fatal plugin errors and returns success)", err)
		}
		if err := checkEmptyAdjustment("CreateContainer of the dropped plugin", resp); err != nil {
			return err
		}
	}
	if _, err := h.waitLogMsg(wholeLine(connectionClosedLine("10-slow")), time.Second); err != nil {
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
	// killed while idle: only its connection closes
	h.expectLog(connectionClosedLine("10-restart"))
	p1.kill()
	if !p1.waitExit(3 * time.Second) {
		return errors.New("killed plugin did not exit")
	}
	if _, err := h.waitLogMsg(wholeLine(connectionClosedLine("10-restart")), 3*time.Second); err != nil {
		return err
	}
	if _, err := h.external(h.plugin, "restart", "10", cfg); err != nil {
		return fmt.Errorf("restarted plugin: %w", err)
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	if err := h.checkPreamble(es, 0, 2, 3, h.plugin); err != nil {
		return err
	}
	if err := h.checkPreamble(es, 2, 2, 3, h.plugin); err != nil {
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
	h.expectLog(connectionClosedLine("30-victim"))
	if !skipsClosedPlugins() {
		// the next request is still relayed to the closed plugin
		h.expectFatalFailure("30-victim", "CreateContainer", "ttrpc: closed", false)
		if h.deadValidatorFails(h.plugin) {
			h.expectLog(validatorClosingLine("30-victim", "ttrpc: closed"))
		}
	}
	if err := syscall.Kill(info.pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", info.pid, err)
	}
	if _, err := h.waitLogMsg(wholeLine(connectionClosedLine("30-victim")), 3*time.Second); err != nil {
		return err
	}
	pod := mkPod("pod-v", nil)
	if h.deadValidatorFails(h.plugin) {
		// before v0.12.5 the dead validator is still asked to validate
		_, err := h.create(pod, mkCtr("ctr-v0", pod.Id, map[string]string{"interop/adjust": "env"}))
		if err == nil || !strings.Contains(err.Error(), "validator plugin 30-victim failed") {
			return fmt.Errorf("first CreateContainer after the kill: error %v, want \"validator plugin 30-victim failed: ...\" "+
				"(before v0.12.5 a dead validator fails the next CreateContainer)", err)
		}
	}
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
	if err := h.checkPreamble(es, 0, 0, 0, h.plugin); err != nil {
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
		bin := h.plugin
		if pfx == "B" {
			bin = binB
		}
		if err := h.checkPreamble(mine, 0, 0, 0, bin); err != nil {
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
