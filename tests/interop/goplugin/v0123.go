//go:build nri_v0_12_3

package main

import "github.com/containerd/nri/pkg/api"

// applyFailurePolicy: failure policies arrived in v0.12.5.
func applyFailurePolicy(*api.ConfigureResponse, string) {}
