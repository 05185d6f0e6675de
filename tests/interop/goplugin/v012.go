//go:build nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5

// NRI v0.12: the runtime's NRI version and memory policies.

package main

import "github.com/containerd/nri/pkg/api"

// runtimeNRIVersion is the version the runtime sent in Configure (the stub
// infers one from the runtime's name when it sent none, which fails for a
// runtime it does not know).
func runtimeNRIVersion(p *plugin) string {
	if p.stub == nil {
		return ""
	}
	return p.stub.RuntimeNRIVersion()
}

func setMemoryPolicy(a *api.ContainerAdjustment) {
	a.SetLinuxMemoryPolicy(api.MpolMode_MPOL_BIND, "0", api.MpolFlag_MPOL_F_STATIC_NODES)
}

// imageName is the container's image reference, `-` when unset.
func imageName(c *api.Container) string {
	if c.GetImage() == nil || c.GetImage().GetName() == "" {
		return "-"
	}
	return c.GetImage().GetName()
}

// clearMemoryPolicy drops the memory policy of an adjustment.
func clearMemoryPolicy(l *api.LinuxContainerAdjustment) { l.MemoryPolicy = nil }
