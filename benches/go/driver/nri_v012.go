//go:build nri_v012

// What driver C (github.com/containerd/nri v0.12.5 pkg/adaptation, built
// with go-nri-v0.12.5.mod) needs that differs from v0.9.0: dedicated
// request types per event, and telling whether the plugin was served over
// the per-event RPC or over the StateChange fallback.

package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

const nriVersion = "v0.12.5"

// deprecations records the adaptation's deprecation warnings. v0.12 first
// calls a per-event RPC; when the plugin answers UNIMPLEMENTED it falls
// back to StateChange for good and records DeprecatedStateChange (logged
// as "plugin ... uses deprecated StateChange" without a recorder).
type deprecations struct {
	sync.Mutex
	seen []string
}

var recorded deprecations

func (d *deprecations) PluginWarning(_ context.Context, dep adaptation.Deprecation, plugin, details string) {
	d.Lock()
	defer d.Unlock()
	d.seen = append(d.seen, fmt.Sprintf("%s: %s (%s)", plugin, dep, details))
}

func (d *deprecations) fellBack() (bool, []string) {
	d.Lock()
	defer d.Unlock()
	return len(d.seen) > 0, append([]string(nil), d.seen...)
}

func versionOptions() []adaptation.Option {
	return []adaptation.Option{adaptation.WithDeprecationRecorder(&recorded)}
}

// startContainerFn: v0.12 relays StartContainer as its own request.
func startContainerFn(a *adaptation.Adaptation, pod *api.PodSandbox, ctr *api.Container) func() error {
	req := &adaptation.StartContainerRequest{Pod: pod, Container: ctr}
	return func() error { return a.StartContainer(context.Background(), req) }
}

// reportTransport says once how StartContainer reached the plugin:
// start_fallback 0 = the per-event StartContainer RPC, 1 = StateChange
// after the plugin answered the RPC with UNIMPLEMENTED.
func reportTransport() {
	fell, seen := recorded.fellBack()
	if fell {
		for _, s := range seen {
			fmt.Fprintf(os.Stderr, "driver: adaptation %s recorded a deprecation: %s\n", nriVersion, s)
		}
		fmt.Fprintf(os.Stderr, "driver: StartContainer reached the plugin over the StateChange fallback\n")
		result("start_fallback", 1)
		return
	}
	fmt.Fprintf(os.Stderr, "driver: StartContainer reached the plugin over the per-event StartContainer RPC\n")
	result("start_fallback", 0)
}
