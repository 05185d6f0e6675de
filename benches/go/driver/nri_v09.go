//go:build !nri_v012

// What driver B (github.com/containerd/nri v0.9.0 pkg/adaptation) needs
// that differs from v0.12.

package main

import (
	"context"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

const nriVersion = "v0.9.0"

func versionOptions() []adaptation.Option { return nil }

// startContainerFn: v0.9.0 relays StartContainer as a StateChange event.
func startContainerFn(a *adaptation.Adaptation, pod *api.PodSandbox, ctr *api.Container) func() error {
	evt := &adaptation.StateChangeEvent{Pod: pod, Container: ctr}
	return func() error { return a.StartContainer(context.Background(), evt) }
}

// reportTransport: v0.9.0 has one way only (StateChange); nothing to say.
func reportTransport() {}
