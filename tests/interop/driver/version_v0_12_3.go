//go:build nri_v0_12_3

// The adaptation of github.com/containerd/nri v0.12.3 (go-nri-v0.12.3.mod),
// the one containerd 2.4 embeds.

package main

const (
	adaptationVersion = "v0.12.3"
	// v0.12.3 sends its NRI version in Configure; inference is not needed.
	runtimeName    = "containerd"
	runtimeVersion = "v2.4.0"
	inferredNRI    = ""
)
