//go:build nri_v0_12_4

// The adaptation of github.com/containerd/nri v0.12.4 (go-nri-v0.12.4.mod),
// the first with plugin failure policies (no runtime release embeds it).

package main

const (
	adaptationVersion = "v0.12.4"
	// A runtime name no inference table knows: a plugin can only learn the
	// NRI version from Configure, where v0.12.4 sends it.
	runtimeName    = "interop-runtime"
	runtimeVersion = "v0.12.4"
	inferredNRI    = ""
)
