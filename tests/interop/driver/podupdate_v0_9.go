//go:build nri_v0_9 || !(nri_v0_10 || nri_v0_11 || nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5)

// v0.9.0 has no pod sandbox update events.

package main

import (
	"errors"

	"github.com/containerd/nri/pkg/api"
)

var errNoPodUpdate = errors.New("the v0.9.0 adaptation has no UpdatePodSandbox or PostUpdatePodSandbox")

func (h *H) updatePodSandbox(*api.PodSandbox, *api.LinuxResources, *api.LinuxResources) error {
	return errNoPodUpdate
}

func (h *H) postUpdatePodSandbox(*api.PodSandbox) error { return errNoPodUpdate }
