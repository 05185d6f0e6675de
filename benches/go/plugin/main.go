// Command plugin is the Go side of the benchmark: the same trivial logic
// as the Rust bench plugin (benches/bin/plugin.rs), on upstream pkg/stub
// (github.com/containerd/nri v0.9.0). CreateContainer adds 2 env vars, 1
// mount and sets CPU shares; StartContainer and Synchronize do nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"nri-bench/payload"
)

type plugin struct{}

func (p *plugin) Synchronize(_ context.Context, _ []*api.PodSandbox, _ []*api.Container) ([]*api.ContainerUpdate, error) {
	return nil, nil
}

func (p *plugin) CreateContainer(_ context.Context, _ *api.PodSandbox, _ *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	return payload.Adjust(), nil, nil
}

func (p *plugin) StartContainer(_ context.Context, _ *api.PodSandbox, _ *api.Container) error {
	return nil
}

func main() {
	var (
		name   = flag.String("name", "", "plugin name")
		idx    = flag.String("idx", "", "plugin index (two digits)")
		socket = flag.String("socket", "", "NRI socket path")
	)
	flag.Parse()
	var opts []stub.Option
	if *name != "" {
		opts = append(opts, stub.WithPluginName(*name))
	}
	if *idx != "" {
		opts = append(opts, stub.WithPluginIdx(*idx))
	}
	if *socket != "" {
		opts = append(opts, stub.WithSocketPath(*socket))
	}
	s, err := stub.New(&plugin{}, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench plugin: %v\n", err)
		os.Exit(1)
	}
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "bench plugin: %v\n", err)
		os.Exit(1)
	}
}
