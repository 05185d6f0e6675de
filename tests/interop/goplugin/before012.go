//go:build nri_v0_10 || nri_v0_11

// NRI v0.10.0 and v0.11.0: no NRI version in Configure, no memory policy,
// no container image, no failure policy.

package main

import (
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// runtimeNRIVersion: a v0.10/v0.11 stub does not know the runtime's NRI version.
func runtimeNRIVersion(*plugin) string { return "" }

// setMemoryPolicy: memory policies arrived in v0.12.0.
func setMemoryPolicy(*api.ContainerAdjustment) {}

// policyOptions: failure policies arrived in v0.12.4; the flag is accepted
// and has no effect.
func policyOptions(string) []stub.Option { return nil }

// imageName: the v0.10/v0.11 API has no image field (v0.12.2 brought it).
func imageName(*api.Container) string { return "-" }

// clearMemoryPolicy: the v0.10/v0.11 API has no memory policy.
func clearMemoryPolicy(*api.LinuxContainerAdjustment) {}
