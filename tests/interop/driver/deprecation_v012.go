//go:build nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5

// The v0.12 adaptations call the per-event RPCs and fall back to
// StateChange for a plugin that answers UNIMPLEMENTED, reporting a
// deprecation to the runtime's recorder (containerd shows it in
// `ctr deprecations list`). The driver installs a recorder; every recorded
// deprecation fails the scenario unless it expects one.

package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/containerd/nri/pkg/adaptation"
)

type deprecationRecorder struct{ h *H }

func (d deprecationRecorder) PluginWarning(_ context.Context, dep adaptation.Deprecation, plugin, details string) {
	d.h.recordDeprecation(fmt.Sprintf("%s: plugin %s %s", dep, plugin, details))
}

func versionOptions(h *H) []adaptation.Option {
	if h.noRecorder {
		return nil
	}
	return []adaptation.Option{adaptation.WithDeprecationRecorder(deprecationRecorder{h})}
}

// stateChangeFallback reports whether the adaptation wraps the named
// plugin's client to funnel events over StateChange (it does so at the
// first UNIMPLEMENTED answer to a per-event RPC). Read by reflection:
// plugin.impl.ttrpcImpl is an *origImplWrapper after a fallback.
func (h *H) stateChangeFallback(name string) (bool, error) {
	var found, wrapped bool
	err := h.withPlugins(func(p reflect.Value) {
		if pluginName(p) != name {
			return
		}
		found = true
		impl := p.FieldByName("impl")
		if impl.IsNil() {
			return
		}
		client := impl.Elem().FieldByName("ttrpcImpl")
		if client.IsValid() && !client.IsNil() {
			wrapped = client.Elem().Type().String() == "*adaptation.origImplWrapper"
		}
	})
	if err != nil {
		return false, err
	}
	if !found {
		return false, errors.New("plugin " + name + " not in the adaptation's list")
	}
	return wrapped, nil
}
