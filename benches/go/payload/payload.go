// Package payload builds the benchmark's requests. The Rust driver
// (benches/bin/common.rs) builds byte-for-byte the same messages.
package payload

import (
	"fmt"

	"github.com/containerd/nri/pkg/api"
)

// Pod i: 10 labels, 10 annotations, Linux cgroup paths.
func Pod(i int) *api.PodSandbox {
	uid := fmt.Sprintf("%032x", i+7000000)
	p := &api.PodSandbox{
		Id:             fmt.Sprintf("%064x", i+1000000),
		Name:           fmt.Sprintf("bench-pod-%d", i),
		Uid:            uid,
		Namespace:      "default",
		Labels:         map[string]string{},
		Annotations:    map[string]string{},
		RuntimeHandler: "runc",
		Linux: &api.LinuxPodSandbox{
			CgroupParent: "/kubepods/burstable/pod" + uid,
			CgroupsPath:  "/kubepods/burstable/pod" + uid,
		},
	}
	for k := 0; k < 10; k++ {
		p.Labels[fmt.Sprintf("app.kubernetes.io/label-%d", k)] = fmt.Sprintf("label-value-%d", k)
		p.Annotations[fmt.Sprintf("example.com/annotation-%d", k)] = fmt.Sprintf("annotation-value-%d-abcdefghijklmnopqrstuvwxyz", k)
	}
	return p
}

// Container i of pod: 20 env, 6 mounts, Linux resources.
func Container(i int, pod *api.PodSandbox) *api.Container {
	id := fmt.Sprintf("%064x", i+5000000)
	c := &api.Container{
		Id:           id,
		PodSandboxId: pod.Id,
		Name:         fmt.Sprintf("bench-ctr-%d", i),
		State:        api.ContainerState_CONTAINER_CREATED,
		Labels: map[string]string{
			"io.kubernetes.container.name": fmt.Sprintf("bench-ctr-%d", i),
			"io.kubernetes.pod.namespace":  "default",
		},
		Annotations: map[string]string{
			"io.kubernetes.container.hash":         "8f9d3c2a",
			"io.kubernetes.container.restartCount": "0",
		},
		Args: []string{"/bin/sh", "-c", "sleep infinity"},
		Linux: &api.LinuxContainer{
			Resources: &api.LinuxResources{
				Memory: &api.LinuxMemory{Limit: api.Int64(268435456)},
				Cpu: &api.LinuxCPU{
					Shares: api.UInt64(1024),
					Quota:  api.Int64(50000),
					Period: api.UInt64(100000),
					Cpus:   "0-1",
					Mems:   "0",
				},
			},
			CgroupsPath: "/kubepods/burstable/pod" + pod.Uid + "/" + id,
		},
	}
	for k := 0; k < 20; k++ {
		c.Env = append(c.Env, fmt.Sprintf("ENV_VAR_%d=value-%d-abcdefghijklmnop", k, k))
	}
	for k := 0; k < 6; k++ {
		c.Mounts = append(c.Mounts, &api.Mount{
			Destination: fmt.Sprintf("/mnt/vol-%d", k),
			Type:        "bind",
			Source:      fmt.Sprintf("/var/lib/kubelet/pods/%s/volumes/vol-%d", pod.Uid, k),
			Options:     []string{"rbind", "rprivate", "rw"},
		})
	}
	return c
}

// State: n containers, one pod per 10 containers.
func State(n int) ([]*api.PodSandbox, []*api.Container) {
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	for i := 0; i < n; i++ {
		if i%10 == 0 {
			pods = append(pods, Pod(i/10))
		}
		ctrs = append(ctrs, Container(i, pods[len(pods)-1]))
	}
	return pods, ctrs
}

// Adjust is the bench plugin's CreateContainer logic: 2 env, 1 mount, CPU
// shares.
func Adjust() *api.ContainerAdjustment {
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("NRI_BENCH_A", "adjusted-a")
	adj.AddEnv("NRI_BENCH_B", "adjusted-b")
	adj.AddMount(&api.Mount{
		Destination: "/run/nri-bench",
		Type:        "bind",
		Source:      "/var/lib/nri-bench",
		Options:     []string{"rbind", "ro"},
	})
	adj.SetLinuxCPUShares(512)
	return adj
}
