//go:build nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5

// Randomized replies for the differential check (tests/interop/differential):
// not part of the contract. With the annotation interop/random=<seed>, the
// plugin answers CreateContainer, UpdateContainer and StopContainer with
// adjustments and updates drawn from a generator seeded by the seed and the
// plugin's tag, so that the same plugins given the same requests answer the
// same under every runtime. Plugins draw most keys from pools of their own
// and at most one per map-like field from a pool they share (so that
// plugins conflict, but never on two keys of one Go map, whose iteration
// order would make the reported conflict random).

package main

import (
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"

	"github.com/containerd/nri/pkg/api"
)

const annRandom = "interop/random"

type gen struct {
	r *rand.Rand
	t string
}

func newGen(seed, tag, what string) *gen {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s/%s", seed, tag, what)
	return &gen{r: rand.New(rand.NewSource(int64(h.Sum64()))), t: tag}
}

// p is true with the given percentage.
func (g *gen) p(pct int) bool { return g.r.Intn(100) < pct }

// shared is a key of the pool every plugin draws from.
func (g *gen) shared(field string) string { return fmt.Sprintf("%s-s%d", field, g.r.Intn(3)) }

// own is a key only this plugin uses.
func (g *gen) own(field string, i int) string { return fmt.Sprintf("%s-%s-%d", field, g.t, i) }

func (g *gen) n(max int) int { return g.r.Intn(max + 1) }

// randomCreate draws a CreateContainer reply.
func randomCreate(seed, tag, ctrID string) (*api.ContainerAdjustment, []*api.ContainerUpdate) {
	g := newGen(seed, tag, "create")
	a := &api.ContainerAdjustment{}
	t := g.t

	for i := 0; i < g.n(2); i++ {
		a.AddAnnotation(g.own("ann", i), t)
	}
	if g.p(30) {
		a.AddAnnotation(g.shared("ann"), t)
	}
	if g.p(20) {
		a.RemoveAnnotation(g.shared("ann"))
	}
	if g.p(15) {
		a.RemoveAnnotation(fmt.Sprintf("orig-ann-%d", g.r.Intn(3)))
	}

	for i := 0; i < g.n(1); i++ {
		a.AddMount(&api.Mount{Destination: "/mnt/" + g.own("m", i), Type: "bind", Source: "/src/" + t, Options: []string{"rbind"}})
	}
	if g.p(25) {
		a.AddMount(&api.Mount{Destination: "/mnt/" + g.shared("m"), Type: "bind", Source: "/src/" + t})
	}
	switch g.r.Intn(8) { // at most one removal: Go orders removals randomly
	case 0:
		a.RemoveMount("/mnt/" + g.shared("m"))
	case 1:
		a.RemoveMount(fmt.Sprintf("/orig/m%d", g.r.Intn(3)))
	}

	for i := 0; i < g.n(2); i++ {
		a.AddEnv(g.own("ENV", i), t)
	}
	if g.p(25) {
		a.AddEnv(g.shared("ENV"), t)
	}
	if g.p(20) {
		a.RemoveEnv(g.shared("ENV"))
	}
	if g.p(15) {
		a.RemoveEnv(fmt.Sprintf("ORIG_%d", g.r.Intn(3)))
	}

	switch g.r.Intn(10) {
	case 0, 1:
		a.SetArgs([]string{"/bin/" + t, fmt.Sprint(g.r.Intn(9))})
	case 2:
		a.UpdateArgs([]string{"/bin/override-" + t})
	}
	if g.p(30) {
		a.AddHooks(&api.Hooks{Prestart: []*api.Hook{{Path: "/bin/" + t + "-hook", Args: []string{"x"}}}})
	}

	for i := 0; i < g.n(1); i++ {
		a.AddDevice(&api.LinuxDevice{Path: "/dev/" + g.own("d", i), Type: "c", Major: 1, Minor: int64(i), FileMode: api.FileMode(os.FileMode(0o600))})
	}
	if g.p(30) {
		a.AddDevice(&api.LinuxDevice{Path: "/dev/" + g.shared("d"), Type: "b", Major: 8, Minor: 1})
	}
	if g.p(15) {
		a.RemoveDevice(fmt.Sprintf("/dev/orig%d", g.r.Intn(3)))
	}

	randomResources(g, a)

	if g.p(10) {
		a.SetLinuxCgroupsPath("/cg/" + t)
	}
	if g.p(15) {
		v := g.r.Intn(1000) - 500
		a.SetLinuxOomScoreAdj(&v)
	}
	if g.p(15) {
		a.SetLinuxIOPriority(&api.LinuxIOPriority{Class: api.IOPrioClass(g.r.Intn(4)), Priority: int32(g.r.Intn(8))})
	}
	if g.p(10) {
		a.SetLinuxSeccompPolicy(&api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ALLOW", Flags: []string{t}})
	}
	nsTypes := []string{"network", "ipc", "uts"}
	if g.p(25) {
		a.AddOrReplaceNamespace(&api.LinuxNamespace{Type: nsTypes[g.r.Intn(3)], Path: "/ns/" + t})
	}
	if g.p(10) {
		a.RemoveNamespace(&api.LinuxNamespace{Type: nsTypes[g.r.Intn(3)]})
	}
	for i := 0; i < g.n(1); i++ {
		a.SetLinuxSysctl("net."+g.own("sys", i), t)
	}
	if g.p(30) {
		a.SetLinuxSysctl("net."+g.shared("sys"), t)
	}
	if g.p(15) {
		if a.Linux == nil {
			a.Linux = &api.LinuxContainerAdjustment{}
		}
		a.Linux.Sysctl = setKey(a.Linux.Sysctl, api.MarkForRemoval("net."+g.shared("sys")))
	}
	if g.p(30) {
		a.AddLinuxNetDevice(g.own("host", 0), &api.LinuxNetDevice{Name: t + "0"})
	}
	if g.p(25) {
		a.AddLinuxNetDevice(g.shared("host"), &api.LinuxNetDevice{Name: t + "s"})
	}
	if g.p(10) {
		a.RemoveLinuxNetDevice(g.shared("host"))
	}
	if g.p(10) {
		a.SetLinuxScheduler(&api.LinuxScheduler{Policy: api.LinuxSchedulerPolicy(g.r.Intn(8)), Nice: int32(g.r.Intn(20))})
	}
	if g.p(8) {
		a.RemoveLinuxRDT()
	}
	if g.p(10) {
		a.SetLinuxRDTClosID(t + "-clos")
	}
	if g.p(10) {
		a.SetLinuxRDTSchemata([]string{"L3:0=" + t})
	}
	if g.p(10) {
		a.SetLinuxRDTEnableMonitoring(g.p(50))
	}
	if g.p(10) {
		a.SetLinuxMemoryPolicy(api.MpolMode(g.r.Intn(7)), fmt.Sprint(g.r.Intn(2)), api.MpolFlag_MPOL_F_STATIC_NODES)
	}
	rlimits := []string{"RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE"}
	if g.p(20) {
		a.AddRlimit(rlimits[g.r.Intn(3)], uint64(g.r.Intn(4096)), uint64(g.r.Intn(1024)))
	}
	if g.p(20) {
		a.AddCDIDevice(&api.CDIDevice{Name: "vendor.example/dev=" + g.own("cdi", 0)})
	}
	if g.p(15) {
		a.AddCDIDevice(&api.CDIDevice{Name: "vendor.example/dev=" + g.shared("cdi")})
	}

	var updates []*api.ContainerUpdate
	if g.p(30) {
		updates = randomUpdates(g, []string{"u0", "u1", "u2"})
	}
	if g.p(3) {
		u := &api.ContainerUpdate{}
		u.SetContainerId(ctrID)
		u.SetLinuxCPUShares(2)
		updates = append(updates, u)
	}
	return a, updates
}

// setKey adds key to a map, making the map if needed.
func setKey(m map[string]string, key string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[key] = ""
	return m
}

func randomResources(g *gen, a *api.ContainerAdjustment) {
	t := g.t
	if g.p(15) {
		a.SetLinuxMemoryLimit(int64(g.r.Intn(1 << 20)))
	}
	if g.p(10) {
		a.SetLinuxMemoryReservation(int64(g.r.Intn(1 << 20)))
	}
	if g.p(8) {
		a.SetLinuxMemorySwap(int64(g.r.Intn(1 << 20)))
	}
	if g.p(5) {
		a.SetLinuxMemoryKernel(int64(g.r.Intn(1 << 20)))
	}
	if g.p(5) {
		a.SetLinuxMemoryKernelTCP(int64(g.r.Intn(1 << 20)))
	}
	if g.p(8) {
		a.SetLinuxMemorySwappiness(uint64(g.r.Intn(100)))
	}
	if g.p(5) {
		a.SetLinuxMemoryDisableOomKiller()
	}
	if g.p(5) {
		a.SetLinuxMemoryUseHierarchy()
	}
	if g.p(15) {
		a.SetLinuxCPUShares(uint64(g.r.Intn(2048)))
	}
	if g.p(8) {
		a.SetLinuxCPUQuota(int64(g.r.Intn(100000)))
	}
	if g.p(8) {
		a.SetLinuxCPUPeriod(int64(g.r.Intn(100000)))
	}
	if g.p(5) {
		a.SetLinuxCPURealtimeRuntime(int64(g.r.Intn(1000)))
	}
	if g.p(5) {
		a.SetLinuxCPURealtimePeriod(uint64(g.r.Intn(1000)))
	}
	if g.p(12) {
		a.SetLinuxCPUSetCPUs(fmt.Sprintf("0-%d", g.r.Intn(4)))
	}
	if g.p(8) {
		a.SetLinuxCPUSetMems(fmt.Sprint(g.r.Intn(2)))
	}
	if g.p(10) {
		a.SetLinuxPidLimits(int64(g.r.Intn(1000)))
	}
	if g.p(10) {
		a.AddLinuxHugepageLimit([]string{"2MB", "1GB"}[g.r.Intn(2)], uint64(g.r.Intn(1<<30)))
	}
	if g.p(15) {
		a.AddLinuxUnified(g.own("uni", 0), t)
	}
	if g.p(15) {
		a.AddLinuxUnified(g.shared("uni"), t)
	}
	if g.p(8) {
		a.SetLinuxBlockIOClass(t + "-io")
	}
	if g.p(8) {
		a.SetLinuxRDTClass(t + "-rdt")
	}
	if g.p(8) {
		if a.Linux == nil {
			a.Linux = &api.LinuxContainerAdjustment{}
		}
		if a.Linux.Resources == nil {
			a.Linux.Resources = &api.LinuxResources{}
		}
		a.Linux.Resources.Devices = append(a.Linux.Resources.Devices, &api.LinuxDeviceCgroup{
			Allow: true, Type: "c", Major: api.Int64(int64(1)), Minor: api.Int64(int64(g.r.Intn(9))), Access: "rw",
		})
	}
}

// randomUpdates draws one or two updates of containers from ids. An update
// claims at most one unified key: an ignored failure keeps the claims made
// before it, and Go visits unified keys in random order.
func randomUpdates(g *gen, ids []string) []*api.ContainerUpdate {
	var out []*api.ContainerUpdate
	for i := 0; i <= g.r.Intn(2); i++ {
		u := &api.ContainerUpdate{}
		u.SetContainerId(ids[g.r.Intn(len(ids))])
		if g.p(20) {
			u.SetLinuxMemoryLimit(int64(g.r.Intn(1 << 20)))
		}
		if g.p(20) {
			u.SetLinuxCPUShares(uint64(g.r.Intn(2048)))
		}
		if g.p(20) {
			u.SetLinuxCPUSetCPUs(fmt.Sprintf("%d", g.r.Intn(4)))
		}
		switch g.r.Intn(6) {
		case 0:
			u.AddLinuxUnified(g.own("uni", 1), g.t)
		case 1:
			u.AddLinuxUnified(g.shared("uni"), g.t)
		}
		if g.p(10) {
			u.AddLinuxHugepageLimit("2MB", uint64(g.r.Intn(1<<20)))
		}
		if g.p(10) {
			u.SetLinuxBlockIOClass(g.t + "-io")
		}
		if g.p(10) {
			u.SetLinuxRDTClass(g.t + "-rdt")
		}
		if g.p(10) {
			u.SetLinuxPidLimits(int64(g.r.Intn(100)))
		}
		if g.p(30) {
			u.SetIgnoreFailure()
		}
		out = append(out, u)
	}
	return out
}

// randomUpdatesFor draws the updates of an UpdateContainer (the container
// being updated is among the candidates) or StopContainer reply.
func randomUpdatesFor(seed, tag, event, ctrID string) []*api.ContainerUpdate {
	g := newGen(seed, tag, event)
	if !g.p(70) {
		return nil
	}
	ids := []string{"u0", "u1", "u2"}
	if event == "UpdateContainer" {
		ids = append(ids, ctrID, ctrID)
	}
	return randomUpdates(g, ids)
}
