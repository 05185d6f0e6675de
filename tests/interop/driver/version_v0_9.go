//go:build nri_v0_9 || !(nri_v0_10 || nri_v0_11 || nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5)

// The adaptation of github.com/containerd/nri v0.9.0 (go.mod; also the
// build without tags, or with the tag nri_v0_9).

package main

const (
	// adaptationVersion is the containerd/nri module the driver is built
	// with; main checks it against the build info.
	adaptationVersion = "v0.9.0"
	// The runtime identity the adaptation sends in Configure. v0.9.0 sends
	// no NRI version: CRI-O v1.32 embeds NRI v0.9.0, so a plugin inferring
	// the version from the runtime finds v0.9.0.
	runtimeName    = "cri-o"
	runtimeVersion = "v1.32.4"
	// inferredNRI is what a plugin infers from runtimeName/runtimeVersion
	// (upstream's api.InferVersionFromRuntime).
	inferredNRI = "v0.9.0"
)
