//go:build nri_v0_11

// The adaptation of github.com/containerd/nri v0.11.0 (go-nri-v0.11.0.mod),
// the one containerd 2.2 embeds.

package main

const (
	adaptationVersion = "v0.11.0"
	// v0.11.0 sends no NRI version: a plugin must infer it from the runtime,
	// and containerd v2.2.9 maps to NRI v0.11.0.
	runtimeName    = "containerd"
	runtimeVersion = "v2.2.9"
	inferredNRI    = "v0.11.0"
)
