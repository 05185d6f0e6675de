//go:build nri_v0_12_5

// The adaptation of github.com/containerd/nri v0.12.5 (go-nri-v0.12.5.mod),
// the newest release.

package main

const (
	adaptationVersion = "v0.12.5"
	// A runtime name no inference table knows: a plugin can only learn the
	// NRI version from Configure, where v0.12.5 sends it.
	runtimeName    = "interop-runtime"
	runtimeVersion = "v0.12.5"
	inferredNRI    = ""
)
