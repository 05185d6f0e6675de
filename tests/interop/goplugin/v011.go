//go:build nri_v0_11 || nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5

// What NRI v0.11.0 added to the contract's v0.10+ additions: sysctl, net
// device, scheduler and RDT adjustments, and the container's user, sysctls,
// net devices, scheduler and RDT in the Fields line.

package main

import (
	"fmt"
	"sort"

	"github.com/containerd/nri/pkg/api"
)

// adjustV011 adds the v0.11 parts of interop/adjust=v012 with tag t.
func adjustV011(a *api.ContainerAdjustment, t string) {
	a.SetLinuxSysctl("net.core.somaxconn", "1024")
	a.AddLinuxNetDevice(t+"-host0", &api.LinuxNetDevice{Name: t + "-eth0"})
	a.SetLinuxScheduler(&api.LinuxScheduler{
		Policy: api.LinuxSchedulerPolicy_SCHED_BATCH,
		Nice:   5,
	})
	a.SetLinuxRDTClosID(t + "-clos")
	a.SetLinuxRDTSchemata([]string{"L3:0=ff"})
	a.SetLinuxRDTEnableMonitoring(true)
}

// omitV011Part clears the named v0.11 part of an adjustment (unknown names
// are ignored).
func omitV011Part(l *api.LinuxContainerAdjustment, part string) {
	switch part {
	case "sysctl":
		l.Sysctl = nil
	case "net_devices":
		l.NetDevices = nil
	case "scheduler":
		l.Scheduler = nil
	case "rdt":
		l.Rdt = nil
	}
}

// v011Fields renders the container's v0.11 fields for the Fields line.
func v011Fields(c *api.Container) fieldsV011 {
	l := c.GetLinux()
	f := fieldsV011{user: "-", sched: "-", rdt: "-"}
	if u := c.GetUser(); u != nil {
		gids := []string{}
		for _, g := range u.GetAdditionalGids() {
			gids = append(gids, fmt.Sprint(g))
		}
		f.user = fmt.Sprintf("%d:%d:%s", u.GetUid(), u.GetGid(), joinDash(gids))
	}
	sysctl := []string{}
	for k, v := range l.GetSysctl() {
		sysctl = append(sysctl, k+"="+v)
	}
	sort.Strings(sysctl)
	f.sysctl = joinDash(sysctl)
	netdevs := []string{}
	for k, v := range l.GetNetDevices() {
		netdevs = append(netdevs, k+":"+dash(v.GetName()))
	}
	sort.Strings(netdevs)
	f.netdevs = joinDash(netdevs)
	if sc := l.GetScheduler(); sc != nil {
		flags := []string{}
		for _, fl := range sc.GetFlags() {
			flags = append(flags, fl.String())
		}
		f.sched = fmt.Sprintf("%s:%d:%d:%s", sc.GetPolicy(), sc.GetNice(), sc.GetPriority(), joinDash(flags))
	}
	if r := l.GetRdt(); r != nil {
		clos, schemata, mon := "-", "-", "-"
		if v := r.GetClosId(); v != nil {
			clos = dash(v.GetValue())
		}
		if v := r.GetSchemata(); v != nil {
			schemata = joinDash(v.GetValue())
		}
		if v := r.GetEnableMonitoring(); v != nil {
			mon = fmt.Sprint(v.GetValue())
		}
		f.rdt = clos + ":" + schemata + ":" + mon
	}
	return f
}
