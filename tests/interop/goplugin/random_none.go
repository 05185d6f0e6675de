//go:build !(nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5)

// Randomized replies exist only in v0.12 builds (see random.go).

package main

import "github.com/containerd/nri/pkg/api"

const annRandom = "interop/random"

func randomCreate(string, string, string) (*api.ContainerAdjustment, []*api.ContainerUpdate) {
	return nil, nil
}

func randomUpdatesFor(string, string, string, string) []*api.ContainerUpdate { return nil }
