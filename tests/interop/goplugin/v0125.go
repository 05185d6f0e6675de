//go:build nri_v0_12_5

package main

import "github.com/containerd/nri/pkg/api"

// applyFailurePolicy puts the failure-policy key into the Configure reply
// (nothing for "none" or no key).
func applyFailurePolicy(r *api.ConfigureResponse, policy string) {
	switch policy {
	case "fail-request":
		r.FailurePolicy = &api.FailurePolicy{FailRequest: true}
	case "keep-connected":
		r.FailurePolicy = &api.FailurePolicy{KeepConnected: true}
	case "fail-request,keep-connected":
		r.FailurePolicy = &api.FailurePolicy{FailRequest: true, KeepConnected: true}
	}
}
