//go:build !(nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5)

// Notifications through the adaptations before v0.12, which take a
// StateChangeEvent for every event without a reply and relay it to plugins
// with the StateChange RPC.

package main

import "github.com/containerd/nri/pkg/api"

func (h *H) runPodSandbox(pod *api.PodSandbox) error {
	return h.a.RunPodSandbox(bg, &api.StateChangeEvent{Pod: pod})
}

func (h *H) stopPodSandbox(pod *api.PodSandbox) error {
	return h.a.StopPodSandbox(bg, &api.StateChangeEvent{Pod: pod})
}

func (h *H) removePodSandbox(pod *api.PodSandbox) error {
	return h.a.RemovePodSandbox(bg, &api.StateChangeEvent{Pod: pod})
}

func (h *H) postCreateContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.PostCreateContainer(bg, &api.StateChangeEvent{Pod: pod, Container: ctr})
}

func (h *H) startContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.StartContainer(bg, &api.StateChangeEvent{Pod: pod, Container: ctr})
}

func (h *H) postStartContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.PostStartContainer(bg, &api.StateChangeEvent{Pod: pod, Container: ctr})
}

func (h *H) postUpdateContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.PostUpdateContainer(bg, &api.StateChangeEvent{Pod: pod, Container: ctr})
}

func (h *H) removeContainer(pod *api.PodSandbox, ctr *api.Container) error {
	return h.a.RemoveContainer(bg, &api.StateChangeEvent{Pod: pod, Container: ctr})
}
