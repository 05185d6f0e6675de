//go:build nri_v0_10

// NRI v0.10.0 has none of what v0.11.0 added (see v011.go): no sysctl, net
// device, scheduler or RDT adjustment, no container user.

package main

import "github.com/containerd/nri/pkg/api"

// adjustV011: the v0.10 API has none of the v0.11 adjustments.
func adjustV011(*api.ContainerAdjustment, string) {}

// omitV011Part: nothing to clear.
func omitV011Part(*api.LinuxContainerAdjustment, string) {}

// v011Fields: the v0.10 API has none of these fields.
func v011Fields(*api.Container) fieldsV011 {
	return fieldsV011{user: "-", sysctl: "-", netdevs: "-", sched: "-", rdt: "-"}
}
