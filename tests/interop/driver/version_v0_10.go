//go:build nri_v0_10

// The adaptation of github.com/containerd/nri v0.10.0 (go-nri-v0.10.0.mod),
// the one containerd 2.2.0 embeds: the pod update events and validation,
// the v0.10 adjustments (args, I/O priority, seccomp policy, namespaces), no
// sysctl, net device, scheduler or RDT adjustment and no Container.user
// (those arrived in v0.11.0).

package main

const (
	adaptationVersion = "v0.10.0"
	// v0.10.0 sends no NRI version: a plugin must infer it from the runtime,
	// and containerd v2.2.0 maps to NRI v0.10.0.
	runtimeName    = "containerd"
	runtimeVersion = "v2.2.0"
	inferredNRI    = "v0.10.0"
)
