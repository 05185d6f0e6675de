//go:build nri_v0_12_4 || nri_v0_12_5

// Failure policies (NRI v0.12.4 and newer).

package main

import (
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// policyOptions sends the -failure-policy in the Configure reply.
func policyOptions(policy string) []stub.Option {
	p := &api.FailurePolicy{}
	switch policy {
	case "fail-request":
		p.FailRequest = true
	case "keep-connected":
		p.KeepConnected = true
	case "fail-request,keep-connected":
		p.FailRequest, p.KeepConnected = true, true
	}
	return []stub.Option{stub.WithFailurePolicy(p)}
}
