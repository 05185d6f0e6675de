//go:build nri_v0_10 || nri_v0_11

// v0.10.0 and v0.11.0: UpdatePodSandbox has its own request;
// PostUpdatePodSandbox is a StateChangeEvent like the other notifications.

package main

import "github.com/containerd/nri/pkg/api"

func (h *H) updatePodSandbox(pod *api.PodSandbox, overhead, resources *api.LinuxResources) error {
	_, err := h.a.UpdatePodSandbox(bg, &api.UpdatePodSandboxRequest{
		Pod: pod, OverheadLinuxResources: overhead, LinuxResources: resources})
	return err
}

func (h *H) postUpdatePodSandbox(pod *api.PodSandbox) error {
	return h.a.PostUpdatePodSandbox(bg, &api.StateChangeEvent{Pod: pod})
}
