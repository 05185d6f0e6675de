//go:build nri_v0_9 || !(nri_v0_10 || nri_v0_11 || nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5)

// What a plugin built on the NRI v0.9.0 API does where newer builds do
// more: nothing. Also what a build without any version tag gets.

package main

import (
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// parseExtraKey: a v0.9.0 build knows no keys beyond the base contract;
// unknown keys are ignored.
func parseExtraKey(*config, string, string) error { return nil }

// configureSuffix: the v0.9.0 Configure line ends with the runtime.
func (p *plugin) configureSuffix() string { return "" }

// adjustExtra: a v0.9.0 build knows no adjustment beyond full and env.
func adjustExtra(*api.ContainerAdjustment, string, string, []string) {}

// logFields: a v0.9.0 build knows none of the fields added since.
func (p *plugin) logFields(*api.Container) {}

// extraOptions: none.
func extraOptions(*plugin) []stub.Option { return nil }

// defineFlags: a v0.9.0 build has no flags beyond the base contract.
func defineFlags() func() ([]stub.Option, error) {
	return func() ([]stub.Option, error) { return nil, nil }
}
