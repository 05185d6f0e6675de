package main

// Scenarios about the NRI versions on both sides: a plugin handling the
// v0.10+ events against a runtime that cannot send them (and one that can),
// required events, the v0.12 per-event RPCs instead of StateChange, and the
// failure policy (from v0.12.4).

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

// ---------------------------------------------------------------------------
// new-events-old-runtime

// A plugin handling UpdatePodSandbox, PostUpdatePodSandbox and
// ValidateContainerAdjustment registers with a v0.9 runtime (which refuses
// a subscription to events it does not know) subscribed to what that runtime
// can send, and serves it.
func scNewEventsOldRuntime(h *H) error {
	if atLeast(adaptationVersion, "v0.10.0") {
		return skipf("needs a runtime before NRI v0.10, this adaptation is %s (new-events-delivered covers it)", adaptationVersion)
	}
	if err := h.needAdditions(h.plugin); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	logA, logB := h.path("new.log"), h.path("narrow.log")
	if _, err := h.external(h.plugin, "new", "10", "log="+logA+"\n"); err != nil {
		return fmt.Errorf("plugin handling the v0.10+ events: %w", err)
	}
	// asking for events the runtime cannot send, among one it can
	if _, err := h.external(h.plugin, "narrow", "11", "log="+logB+
		"\nevents=updatepodsandbox,postupdatepodsandbox,validatecontaineradjustment,createcontainer\n"); err != nil {
		return fmt.Errorf("plugin asking for v0.10+ events: %w", err)
	}
	want := map[string]api.EventMask{"10-new": v09Events, "11-narrow": api.MustParseEventMask("createcontainer")}
	list, err := h.plugins()
	if err != nil {
		return err
	}
	for _, p := range list {
		if w, ok := want[p.name]; ok && p.events != w {
			return fmt.Errorf("%s subscribed to 0x%x, want 0x%x (what the %s runtime can send of what it asked for)",
				p.name, int32(p.events), int32(w), adaptationVersion)
		}
		if h.verbose {
			fmt.Fprintf(os.Stderr, "    %s subscribed to 0x%x\n", p.name, int32(p.events))
		}
	}
	pod := mkPod("pod-new", nil)
	_, wantLines, err := h.lifecycle(pod, func() *api.Container { return mkCtr("ctr-new", pod.Id, nil) })
	if err != nil {
		return err
	}
	es, err := readLog(logA)
	if err != nil {
		return err
	}
	if err := h.checkPreamble(es, 0, 0, 0, h.plugin); err != nil {
		return err
	}
	if err := checkEventSeq(es, wantLines); err != nil {
		return fmt.Errorf("10-new: %w", err)
	}
	if es, err = readLog(logB); err != nil {
		return err
	}
	if err := checkEventSeq(es, []expectLine{{"CreateContainer", "pod-new", "ctr-new"}}); err != nil {
		return fmt.Errorf("11-narrow: %w", err)
	}
	for _, n := range []string{"10-new", "11-narrow"} {
		if err := h.mustBeRegistered(n); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// new-events-delivered

// Against a v0.10+ runtime the same plugin subscribes to every event and
// gets the new ones. v0.10 and v0.11 send no NRI version: the plugin infers
// it from the runtime's name and version (containerd v2.2.9: v0.11.0).
func scNewEventsDelivered(h *H) error {
	if err := needAdaptation("v0.10.0", "delivering the v0.10+ events"); err != nil {
		return err
	}
	if err := h.needAdditions(h.plugin); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("all.log")
	if _, err := h.external(h.plugin, "all", "10", "log="+logE+"\n"); err != nil {
		return err
	}
	info, _, err := h.findPlugin("10-all")
	if err != nil {
		return err
	}
	if info.events != api.ValidEvents {
		return fmt.Errorf("10-all subscribed to 0x%x, want every event of %s 0x%x", int32(info.events), adaptationVersion, int32(api.ValidEvents))
	}
	pod := mkPod("pod-all", nil)
	if err := h.runPodSandbox(pod); err != nil {
		return fmt.Errorf("RunPodSandbox: %w", err)
	}
	if err := h.updatePodSandbox(pod, &api.LinuxResources{}, &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(512)}}); err != nil {
		return fmt.Errorf("UpdatePodSandbox: %w", err)
	}
	if err := h.postUpdatePodSandbox(pod); err != nil {
		return fmt.Errorf("PostUpdatePodSandbox: %w", err)
	}
	if _, err := h.create(pod, mkCtr("ctr-all", pod.Id, nil)); err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	es, err := readLog(logE)
	if err != nil {
		return err
	}
	if err := h.checkPreamble(es, 0, 0, 0, h.plugin); err != nil {
		return err
	}
	if err := checkEventSeq(es, []expectLine{
		{"RunPodSandbox", "pod-all", "-"},
		{"UpdatePodSandbox", "pod-all", "-"},
		{"PostUpdatePodSandbox", "pod-all", "-"},
		{"CreateContainer", "pod-all", "ctr-all"},
	}); err != nil {
		return err
	}
	return checkLines(es, "ValidateContainerAdjustment", []string{"ValidateContainerAdjustment pod=pod-all ctr=ctr-all plugins=10-all"})
}

// ---------------------------------------------------------------------------
// required-event

// validateBit is ValidateContainerAdjustment's bit (event 14; the v0.9 API
// has no name for it).
const validateBit = api.EventMask(1 << (14 - 1))

func scRequiredEvent(h *H) error {
	if !opts.requireEvents {
		return skipf("the -plugin is not known to take -require (Go's stub has no equivalent): run the driver with -require-events for one that does")
	}
	if err := h.needAdditions(h.plugin); err != nil {
		return err
	}
	if err := h.start(); err != nil {
		return err
	}
	logE := h.path("req.log")
	require := []string{"-require", "validatecontaineradjustment"}
	if atLeast(adaptationVersion, "v0.10.0") {
		// the runtime can send it: the plugin registers and validates
		if _, err := h.external(h.plugin, "req", "10", "log="+logE+"\n", require...); err != nil {
			return err
		}
		info, _, err := h.findPlugin("10-req")
		if err != nil {
			return err
		}
		if info.events&validateBit == 0 {
			return fmt.Errorf("10-req subscribed to 0x%x, without the required ValidateContainerAdjustment", int32(info.events))
		}
		pod := mkPod("pod-req", nil)
		if _, err := h.create(pod, mkCtr("ctr-req", pod.Id, nil)); err != nil {
			return fmt.Errorf("CreateContainer: %w", err)
		}
		es, err := readLog(logE)
		if err != nil {
			return err
		}
		return checkLines(es, "ValidateContainerAdjustment", []string{"ValidateContainerAdjustment pod=pod-req ctr=ctr-req plugins=10-req"})
	}

	// The runtime cannot send it: registration fails with an error naming
	// the event and the runtime, and the plugin exits with status 78.
	// The plugin's refusal reaches the adaptation as Configure's error status,
	// or (if it closes the connection before the adaptation reads the reply)
	// as a closed connection.
	h.expectLog(`failed to start external plugin: failed to configure plugin: rpc error: code = \w+ desc = .*ValidateContainerAdjustment.*`)
	h.allowLog(`failed to start external plugin: failed to configure plugin: ttrpc: closed`)
	h.allowLog(`connection to plugin "10-req\d" closed`)
	h.allowLog(`ttrpc server for plugin "10-req\d" closed \(.*\)`)
	// Several attempts: the plugin must report the refusal every time, also
	// when the runtime closes the connection right after the error reply.
	const attempts = 10
	for i := 0; i < attempts; i++ {
		name := fmt.Sprintf("req%d", i)
		p, err := h.runExternal(h.plugin, name, "10", "log="+logE+"\n", require...)
		if err != nil {
			return err
		}
		if !p.waitExit(5 * time.Second) {
			return fmt.Errorf("attempt %d: plugin requiring ValidateContainerAdjustment still running 5s after connecting to a runtime that cannot send it", i+1)
		}
		out, err := os.ReadFile(p.out)
		if err != nil {
			return err
		}
		msg := strings.TrimSpace(string(out))
		if code := p.cmd.ProcessState.ExitCode(); code != 78 {
			return fmt.Errorf("attempt %d: plugin exited with status %d, want 78 (its output: %q)", i+1, code, trunc(msg, 400))
		}
		for _, want := range []string{"ValidateContainerAdjustment", runtimeName + " " + runtimeVersion, inferredNRI} {
			if !strings.Contains(msg, want) {
				return fmt.Errorf("attempt %d: plugin's error %q does not name %q", i+1, trunc(msg, 400), want)
			}
		}
		if h.verbose && i == 0 {
			fmt.Fprintf(os.Stderr, "    plugin's stderr: %s\n", msg)
		}
		if _, ok, err := h.findPlugin("10-" + name); err != nil || ok {
			return fmt.Errorf("10-%s is in the plugin list (err %v)", name, err)
		}
	}
	// the runtime goes on serving other plugins
	if _, err := h.external(h.plugin, "next", "11", ""); err != nil {
		return fmt.Errorf("a plugin connecting after the refused one: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// per-event-rpcs

// perEventRPCs drives the -plugin through every notification; a v0.12
// adaptation must reach it through the per-event RPCs (no StateChange
// fallback, nothing deprecated). The negative control, a plugin built on
// v0.9.0, is served through StateChange, and the check must catch it: with
// a recorder (recorded deprecations) or without (warnings in the log).
func perEventRPCs(withRecorder bool) func(*H) error {
	return func(h *H) error {
		if err := needAdaptation("v0.12.0", "per-event RPCs"); err != nil {
			return err
		}
		h.noRecorder = !withRecorder
		if err := h.start(); err != nil {
			return err
		}
		logE := h.path("rpc.log")
		if _, err := h.external(h.plugin, "rpc", "10", "log="+logE+"\n"); err != nil {
			return err
		}
		pod := mkPod("pod-rpc", nil)
		if _, _, err := h.lifecycle(pod, func() *api.Container { return mkCtr("ctr-rpc", pod.Id, nil) }); err != nil {
			return err
		}
		if h.hasAdditions(h.plugin) {
			if err := h.updatePodSandbox(pod, &api.LinuxResources{}, &api.LinuxResources{}); err != nil {
				return fmt.Errorf("UpdatePodSandbox: %w", err)
			}
			if err := h.postUpdatePodSandbox(pod); err != nil {
				return fmt.Errorf("PostUpdatePodSandbox: %w", err)
			}
		}
		if fell, err := h.stateChangeFallback("10-rpc"); err != nil || fell {
			return fmt.Errorf("10-rpc was served through StateChange (fallback %v, err %v)", fell, err)
		}
		if err := h.finalChecks(); err != nil {
			return fmt.Errorf("10-rpc: %w", err)
		}

		if opts.legacyPlugin == "" {
			fmt.Printf("NOTE %s: negative control not run: no -legacy-plugin\n", h.name)
			return nil
		}
		before := len(h.getDeprecations())
		if _, err := h.external(opts.legacyPlugin, "legacy", "11", "log="+h.path("legacy.log")+"\n"); err != nil {
			return fmt.Errorf("legacy plugin: %w", err)
		}
		pod2 := mkPod("pod-legacy", nil)
		if _, _, err := h.lifecycle(pod2, func() *api.Container { return mkCtr("ctr-legacy", pod2.Id, nil) }); err != nil {
			return err
		}
		if fell, err := h.stateChangeFallback("11-legacy"); err != nil || !fell {
			return fmt.Errorf("negative control: 11-legacy not served through StateChange (fallback %v, err %v)", fell, err)
		}
		if fell, _ := h.stateChangeFallback("10-rpc"); fell {
			return errors.New("10-rpc served through StateChange once a legacy plugin joined")
		}
		// the 8 notifications a v0.9 plugin subscribes to, once each
		const notifications = 8
		caught := h.finalChecks()
		if withRecorder {
			deps := h.getDeprecations()[before:]
			if len(deps) != notifications {
				return fmt.Errorf("negative control: %d deprecations recorded, want %d (one per notification): %q", len(deps), notifications, deps)
			}
			for _, d := range deps {
				if !strings.Contains(d, "plugin 11-legacy does not implement a dedicated") {
					return fmt.Errorf("negative control: deprecation %q is not about 11-legacy", d)
				}
			}
			if caught == nil || !strings.Contains(caught.Error(), "deprecation") {
				return fmt.Errorf("negative control: the harness did not catch the recorded deprecations (%v)", caught)
			}
			h.allowDeprecations = true
		} else {
			re := regexp.MustCompile(`plugin 11-legacy uses deprecated StateChange instead of a dedicated (\w+) RPC call`)
			if n := h.countLogMsg(re); n != notifications {
				return fmt.Errorf("negative control: %d deprecation warnings logged, want %d", n, notifications)
			}
			if caught == nil || !strings.Contains(caught.Error(), "11-legacy") {
				return fmt.Errorf("negative control: the harness did not catch the deprecation warnings (%v)", caught)
			}
			h.allowLog(`plugin 11-legacy uses deprecated StateChange instead of a dedicated \w+ RPC call|please update 11-legacy with a newer version of NRI for future compatibility`)
		}
		return nil
	}
}

// ---------------------------------------------------------------------------
// failure-policy-*

// failurePolicy: request timeout 500 ms, the plugin's CreateContainer
// sleeps 1.5 s. The plugin is not a validator (the validation request would
// sleep and time out too).
func failurePolicy(policy string) func(*H) error {
	return func(h *H) error {
		if err := needAdaptation("v0.12.4", "the failure policy (ConfigureResponse.failure_policy)"); err != nil {
			return err
		}
		if err := h.needAdditions(h.plugin); err != nil {
			return err
		}
		const timeout = 500 * time.Millisecond
		adaptation.SetPluginRequestTimeout(timeout)
		if err := h.start(); err != nil {
			return err
		}
		logE := h.path("pol.log")
		p, err := h.external(h.plugin, "pol", "10", "log="+logE+"\nevents=createcontainer\n", "-failure-policy", policy)
		if err != nil {
			return err
		}
		failRequest := strings.Contains(policy, "fail-request")
		keep := strings.Contains(policy, "keep-connected")
		info, _, err := h.findPlugin("10-pol")
		if err != nil {
			return err
		}
		if info.hasPolicy != (policy != "none") || info.failRequest != failRequest || info.keepConnected != keep {
			return fmt.Errorf("the adaptation read policy sent=%v fail_request=%v keep_connected=%v, want -failure-policy %s",
				info.hasPolicy, info.failRequest, info.keepConnected, policy)
		}
		if !failRequest {
			h.expectLog(proceedingLine("10-pol", "CreateContainer", "context deadline exceeded"))
		}
		if keep {
			// the plugin answers once its handler is done, after the runtime
			// gave up the request: Go's ttrpc client logs that late reply
			// (any plugin that is kept after a timeout sends one)
			h.allowLog(`ttrpc: received message on inactive stream stream=\d+`)
		} else {
			h.expectLog(closingLine("10-pol", "CreateContainer", "context deadline exceeded"))
			h.expectLog(connectionClosedLine("10-pol"))
		}

		pod := mkPod("pod-pol", nil)
		start := time.Now()
		resp, err := h.create(pod, mkCtr("ctr-slow", pod.Id, map[string]string{"interop/sleep-ms": "1500", "interop/adjust": "env"}))
		elapsed := time.Since(start)
		if elapsed < timeout-50*time.Millisecond || elapsed >= 1400*time.Millisecond {
			return fmt.Errorf("CreateContainer returned after %v, want the %v request timeout (err %v)", elapsed, timeout, err)
		}
		if failRequest {
			if err == nil || !strings.Contains(err.Error(), "plugin 10-pol failed to handle CreateContainer request") ||
				!strings.Contains(err.Error(), "deadline exceeded") {
				return fmt.Errorf("CreateContainer: error %v, want \"plugin 10-pol failed to handle CreateContainer request: ... deadline exceeded\"", err)
			}
		} else {
			if err != nil {
				return fmt.Errorf("CreateContainer: %v (without fail-request the request proceeds without the plugin)", err)
			}
			if err := checkEmptyAdjustment("CreateContainer past the timeout", resp); err != nil {
				return err
			}
		}
		if !keep {
			if _, err := h.waitLogMsg(wholeLine(connectionClosedLine("10-pol")), time.Second); err != nil {
				return err
			}
			if _, ok, err := h.findPlugin("10-pol"); err != nil || ok {
				return fmt.Errorf("10-pol still listed after the timeout (err %v)", err)
			}
			if !p.waitExit(3 * time.Second) {
				return errors.New("plugin process did not exit after the runtime closed its connection")
			}
			return nil
		}
		// kept: registered, and serving once its slow handler is done
		if err := h.mustBeRegistered("10-pol"); err != nil {
			return fmt.Errorf("keep-connected: %w", err)
		}
		if h.countLogMsg(regexp.MustCompile(`closing plugin 10-pol`)) != 0 {
			return errors.New("keep-connected: the adaptation closed the plugin")
		}
		// closing the connection at the end is the harness's doing
		h.allowLog(connectionClosedLine("10-pol"))
		time.Sleep(1500*time.Millisecond - elapsed + 100*time.Millisecond)
		resp, err = h.create(pod, mkCtr("ctr-next", pod.Id, map[string]string{"interop/adjust": "env"}))
		if err != nil {
			return fmt.Errorf("keep-connected: next CreateContainer: %w", err)
		}
		if resp.GetAdjust().GetAnnotations()["pol.interop/added"] != "yes" {
			return fmt.Errorf("keep-connected: next CreateContainer not adjusted by the kept plugin: %v", resp.GetAdjust().GetAnnotations())
		}
		es, err := readLog(logE)
		if err != nil {
			return err
		}
		return checkEventSeq(es, []expectLine{{"CreateContainer", "pod-pol", "ctr-slow"}, {"CreateContainer", "pod-pol", "ctr-next"}})
	}
}
