//go:build nri_v0_12_3

package main

import "github.com/containerd/nri/pkg/stub"

// policyOptions: failure policies arrived in v0.12.4; the flag is accepted
// and has no effect.
func policyOptions(string) []stub.Option { return nil }
