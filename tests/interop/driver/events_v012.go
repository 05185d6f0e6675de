//go:build nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5

// Notifications through the v0.12 adaptations, which take a dedicated
// request type per event and relay it with the per-event RPC (falling back
// to StateChange, with a deprecation, for a plugin that lacks it).

package main

import "github.com/containerd/nri/pkg/api"

func (h *H) runPodSandbox(pod *api.PodSandbox) error {
	return h.a.RunPodSandbox(bg, &api.RunPodSandboxRequest{Pod: pod})
}

func (h *H) stopPodSandbox(pod *api.PodSandbox) error {
	return h.a.StopPodSandbox(bg, &api.StopPodSandboxRequest{Pod: pod})
}

func (h *H) removePodSandbox(pod *api.PodSandbox) error {
	return h.a.RemovePodSandbox(bg, &api.RemovePodSandboxRequest{Pod: pod})
}

func (h *H) postCreateContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.PostCreateContainer(bg, &api.PostCreateContainerRequest{Pod: pod, Container: ctr})
}

func (h *H) startContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.StartContainer(bg, &api.StartContainerRequest{Pod: pod, Container: ctr})
}

func (h *H) postStartContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.PostStartContainer(bg, &api.PostStartContainerRequest{Pod: pod, Container: ctr})
}

func (h *H) postUpdateContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.PostUpdateContainer(bg, &api.PostUpdateContainerRequest{Pod: pod, Container: ctr})
}

func (h *H) removeContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.RemoveContainer(bg, &api.RemoveContainerRequest{Pod: pod, Container: ctr})
}

func (h *H) updatePodSandbox(pod *api.PodSandbox, overhead, resources *api.LinuxResources) error {
	_, err := h.a.UpdatePodSandbox(bg, &api.UpdatePodSandboxRequest{
		Pod: pod, OverheadLinuxResources: overhead, LinuxResources: resources})
	return err
}

func (h *H) postUpdatePodSandbox(pod *api.PodSandbox) error {
	return h.a.PostUpdatePodSandbox(bg, &api.PostUpdatePodSandboxRequest{Pod: pod})
}
