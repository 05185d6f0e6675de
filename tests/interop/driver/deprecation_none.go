//go:build !(nri_v0_12_3 || nri_v0_12_4 || nri_v0_12_5)

// Adaptations before v0.12 have no per-event RPCs, hence no deprecation of
// StateChange, and no deprecation recorder.

package main

import "github.com/containerd/nri/pkg/adaptation"

func versionOptions(*H) []adaptation.Option { return nil }

// stateChangeFallback reports whether the adaptation fell back to
// StateChange for the named plugin: never before v0.12.
func (h *H) stateChangeFallback(string) (bool, error) { return false, nil }
