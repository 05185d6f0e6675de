package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ---------------------------------------------------------------------------
// Realistic pods and containers.

func mkPod(id string, ann map[string]string) *api.PodSandbox {
	annotations := map[string]string{
		"io.kubernetes.cri.sandbox-id": id,
		"kubernetes.io/config.seen":    "2024-01-01T00:00:00Z",
		"kubernetes.io/config.source":  "api",
	}
	for k, v := range ann {
		annotations[k] = v
	}
	return &api.PodSandbox{
		Id:        id,
		Name:      "pod-" + id,
		Uid:       "uid-" + id,
		Namespace: "default",
		Labels: map[string]string{
			"app":                         "interop",
			"io.kubernetes.pod.name":      "pod-" + id,
			"io.kubernetes.pod.namespace": "default",
			"pod-template-hash":           "5d8f7c9b6",
		},
		Annotations:    annotations,
		RuntimeHandler: "runc",
		Linux: &api.LinuxPodSandbox{
			CgroupParent: "/kubepods/besteffort/pod" + id,
			CgroupsPath:  "/kubepods/besteffort/pod" + id + "/" + id,
			Namespaces: []*api.LinuxNamespace{
				{Type: "ipc"}, {Type: "uts"}, {Type: "network", Path: "/var/run/netns/cni-" + id},
			},
			PodOverhead: &api.LinuxResources{
				Cpu:    &api.LinuxCPU{Shares: api.UInt64(2)},
				Memory: &api.LinuxMemory{Limit: api.Int64(0)},
			},
			PodResources: &api.LinuxResources{
				Cpu:    &api.LinuxCPU{Shares: api.UInt64(1024), Quota: api.Int64(100000), Period: api.UInt64(100000)},
				Memory: &api.LinuxMemory{Limit: api.Int64(512 << 20)},
			},
		},
		Pid: 4242,
		Ips: []string{"10.88.0.7", "fd00::7"},
	}
}

func mkCtr(id, podID string, ann map[string]string) *api.Container {
	annotations := map[string]string{
		"io.kubernetes.cri.container-name": "ctr-" + id,
		"io.kubernetes.cri.sandbox-id":     podID,
	}
	for k, v := range ann {
		annotations[k] = v
	}
	return &api.Container{
		Id:           id,
		PodSandboxId: podID,
		Name:         "ctr-" + id,
		State:        api.ContainerState_CONTAINER_CREATED,
		Labels: map[string]string{
			"io.kubernetes.container.name": "ctr-" + id,
			"io.kubernetes.pod.name":       "pod-" + podID,
		},
		Annotations: annotations,
		Args:        []string{"/bin/sh", "-c", "sleep 3600"},
		Env:         []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=pod-" + podID, "KEEP=1"},
		Mounts: []*api.Mount{
			{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/pods/" + podID + "/etc-hosts", Options: []string{"rbind", "rprivate", "rw"}},
			{Destination: "/dev/shm", Type: "bind", Source: "/run/pods/" + podID + "/shm", Options: []string{"rbind", "ro"}},
		},
		Hooks: &api.Hooks{
			Prestart: []*api.Hook{{Path: "/usr/bin/runtime-hook", Args: []string{"runtime-hook", "prestart"}}},
		},
		Linux: &api.LinuxContainer{
			Namespaces: []*api.LinuxNamespace{{Type: "pid"}, {Type: "mount"}, {Type: "network", Path: "/var/run/netns/cni-" + podID}},
			Devices: []*api.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: api.FileMode(os.FileMode(0o666)), Uid: api.UInt32(uint32(0)), Gid: api.UInt32(uint32(0))},
			},
			Resources: &api.LinuxResources{
				Memory:  &api.LinuxMemory{Limit: api.Int64(256 << 20), Swappiness: api.UInt64(60)},
				Cpu:     &api.LinuxCPU{Shares: api.UInt64(102), Quota: api.Int64(20000), Period: api.UInt64(100000), Cpus: "0-3", Mems: "0"},
				Unified: map[string]string{"memory.oom.group": "1"},
			},
			OomScoreAdj: api.Int(1000),
			CgroupsPath: "/kubepods/besteffort/pod" + podID + "/" + id,
		},
		Pid:     0,
		Rlimits: []*api.POSIXRlimit{{Type: "RLIMIT_NPROC", Hard: 4096, Soft: 4096}},
	}
}

// ---------------------------------------------------------------------------
// Field-by-field comparison of protobuf messages. Presence matters for
// message fields (Optional* wrappers: "unset" differs from "set to 0").

func diffProto(path string, want, got proto.Message) []string {
	var out []string
	wm, gm := want.ProtoReflect(), got.ProtoReflect()
	switch {
	case !wm.IsValid() && !gm.IsValid():
		return nil
	case !wm.IsValid():
		return []string{fmt.Sprintf("%s: want unset, got %s", path, render(gm))}
	case !gm.IsValid():
		return []string{fmt.Sprintf("%s: want %s, got unset", path, render(wm))}
	}
	diffMsg(path, wm, gm, &out)
	return out
}

func render(m protoreflect.Message) string {
	if !m.IsValid() {
		return "<unset>"
	}
	b, err := prototext.MarshalOptions{}.Marshal(m.Interface())
	if err != nil {
		return "<?>"
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	return "{" + trunc(s, 200) + "}"
}

func renderValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	if fd.Message() != nil {
		return render(v.Message())
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return fmt.Sprintf("%q", trunc(v.String(), 100))
	case protoreflect.BytesKind:
		return fmt.Sprintf("%d bytes", len(v.Bytes()))
	}
	return fmt.Sprint(v.Interface())
}

func renderList(fd protoreflect.FieldDescriptor, l protoreflect.List) string {
	var parts []string
	for i := 0; i < l.Len(); i++ {
		parts = append(parts, renderValue(fd, l.Get(i)))
	}
	return trunc("["+strings.Join(parts, ", ")+"]", 400)
}

func scalarEqual(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	if fd.Kind() == protoreflect.BytesKind {
		return string(a.Bytes()) == string(b.Bytes())
	}
	return a.Interface() == b.Interface()
}

func diffMsg(path string, want, got protoreflect.Message, out *[]string) {
	fields := want.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			wl, gl := want.Get(fd).List(), got.Get(fd).List()
			if wl.Len() != gl.Len() {
				*out = append(*out, fmt.Sprintf("%s: want %d items %s, got %d items %s",
					p, wl.Len(), renderList(fd, wl), gl.Len(), renderList(fd, gl)))
				continue
			}
			for j := 0; j < wl.Len(); j++ {
				ep := fmt.Sprintf("%s[%d]", p, j)
				if fd.Message() != nil {
					diffMsg(ep, wl.Get(j).Message(), gl.Get(j).Message(), out)
				} else if !scalarEqual(fd, wl.Get(j), gl.Get(j)) {
					*out = append(*out, fmt.Sprintf("%s: want %s, got %s", ep,
						renderValue(fd, wl.Get(j)), renderValue(fd, gl.Get(j))))
				}
			}
		case fd.IsMap():
			wmap, gmap := want.Get(fd).Map(), got.Get(fd).Map()
			keys := map[string]protoreflect.MapKey{}
			wmap.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys[k.String()] = k; return true })
			gmap.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys[k.String()] = k; return true })
			var names []string
			for k := range keys {
				names = append(names, k)
			}
			sort.Strings(names)
			vfd := fd.MapValue()
			for _, name := range names {
				k := keys[name]
				ep := fmt.Sprintf("%s[%q]", p, name)
				wh, gh := wmap.Has(k), gmap.Has(k)
				switch {
				case wh && !gh:
					*out = append(*out, fmt.Sprintf("%s: want %s, got missing", ep, renderValue(vfd, wmap.Get(k))))
				case !wh && gh:
					*out = append(*out, fmt.Sprintf("%s: unexpected %s", ep, renderValue(vfd, gmap.Get(k))))
				case vfd.Message() != nil:
					diffMsg(ep, wmap.Get(k).Message(), gmap.Get(k).Message(), out)
				case !scalarEqual(vfd, wmap.Get(k), gmap.Get(k)):
					*out = append(*out, fmt.Sprintf("%s: want %s, got %s", ep,
						renderValue(vfd, wmap.Get(k)), renderValue(vfd, gmap.Get(k))))
				}
			}
		case fd.Message() != nil:
			wh, gh := want.Has(fd), got.Has(fd)
			switch {
			case wh && !gh:
				*out = append(*out, fmt.Sprintf("%s: want %s, got unset", p, render(want.Get(fd).Message())))
			case !wh && gh:
				*out = append(*out, fmt.Sprintf("%s: want unset, got %s", p, render(got.Get(fd).Message())))
			case wh && gh:
				diffMsg(p, want.Get(fd).Message(), got.Get(fd).Message(), out)
			}
		default:
			if !scalarEqual(fd, want.Get(fd), got.Get(fd)) {
				*out = append(*out, fmt.Sprintf("%s: want %s, got %s", p,
					renderValue(fd, want.Get(fd)), renderValue(fd, got.Get(fd))))
			}
		}
	}
}

func joinDiffs(d []string) string {
	const max = 8
	if len(d) > max {
		return strings.Join(d[:max], "; ") + fmt.Sprintf("; ... (%d differences)", len(d))
	}
	return strings.Join(d, "; ")
}

// ---------------------------------------------------------------------------
// What the adaptation must hand back for interop/adjust=full with tag t, on a
// container that holds interop/remove-me, /mnt/remove-me, REMOVE_ME and
// /dev/remove-me. This mirrors v0.9.0's result collection: annotation and
// mount removals are reported in the reply (after additions), env and device
// removals are applied to the request only, and the reply always carries its
// skeleton (hooks, linux.resources.memory/cpu).

func expectedFullAdjustment(t string) *api.ContainerAdjustment {
	return withRdtSkeleton(&api.ContainerAdjustment{
		Annotations: map[string]string{
			t + ".interop/added": "yes",
			"-interop/remove-me": "",
		},
		Mounts: []*api.Mount{
			{Destination: "/mnt/" + t, Type: "bind", Source: "/tmp/" + t, Options: []string{"rbind", "ro"}},
			{Destination: "-/mnt/remove-me"},
		},
		Env: []*api.KeyValue{{Key: "INTEROP_" + t, Value: "yes"}},
		Hooks: &api.Hooks{
			Prestart: []*api.Hook{{
				Path:    "/bin/" + t + "-prestart",
				Args:    []string{t + "-prestart", "arg"},
				Env:     []string{"HOOK=" + t},
				Timeout: api.Int(5),
			}},
			Poststop: []*api.Hook{{Path: "/bin/" + t + "-poststop"}},
		},
		Rlimits:    []*api.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}},
		CDIDevices: []*api.CDIDevice{{Name: "vendor.example/dev=" + t}},
		Linux: &api.LinuxContainerAdjustment{
			Devices: []*api.LinuxDevice{{
				Path: "/dev/" + t + "-dev", Type: "c", Major: 1, Minor: 3,
				FileMode: api.FileMode(os.FileMode(0o666)), Uid: api.UInt32(uint32(0)), Gid: api.UInt32(uint32(0)),
			}},
			Resources: &api.LinuxResources{
				Memory: &api.LinuxMemory{
					Limit:            api.Int64(268435456),
					Reservation:      api.Int64(134217728),
					Swap:             api.Int64(536870912),
					Kernel:           api.Int64(1000000),
					KernelTcp:        api.Int64(2000000),
					Swappiness:       api.UInt64(10),
					DisableOomKiller: api.Bool(true),
					UseHierarchy:     api.Bool(true),
				},
				Cpu: &api.LinuxCPU{
					Shares:          api.UInt64(512),
					Quota:           api.Int64(50000),
					Period:          api.UInt64(100000),
					RealtimeRuntime: api.Int64(1000),
					RealtimePeriod:  api.UInt64(2000),
					Cpus:            "0-1",
					Mems:            "0",
				},
				HugepageLimits: []*api.HugepageLimit{{PageSize: "2MB", Limit: 4194304}},
				BlockioClass:   api.String(t + "-blockio"),
				RdtClass:       api.String(t + "-rdt"),
				Unified:        map[string]string{"memory.high": "1000000"},
				Pids:           &api.LinuxPids{Limit: 128},
			},
			CgroupsPath: "/interop/" + t,
			OomScoreAdj: api.Int(10),
		},
	})
}

// withRdtSkeleton adds what the adaptation puts into a merged adjustment
// beyond what the plugins asked for when one of them replied with a linux
// part: from v0.11 on (the version that brought RDT adjustments), an empty
// linux.rdt (the merge initialises it for every such reply).
func withRdtSkeleton(adj *api.ContainerAdjustment) *api.ContainerAdjustment {
	if !atLeast(adaptationVersion, "v0.11.0") || adj.Linux == nil {
		return adj
	}
	m := adj.Linux.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName("rdt"); fd != nil && !m.Has(fd) {
		m.Set(fd, protoreflect.ValueOfMessage(m.NewField(fd).Message()))
	}
	return adj
}
