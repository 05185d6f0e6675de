#!/usr/bin/env bash
# Builds (or finds in the cache) what the end-to-end run drives: containerd,
# its runc shim and ctr for each containerd version, and crictl. Sourced by
# run.sh; on its own:
#
#   tests/e2e/tools.sh v2.4.2 v2.2.9     # builds what is missing, prints the paths
#
# Cache: $NRI_E2E_CACHE, else $XDG_CACHE_HOME/nri-e2e, else ~/.cache/nri-e2e.
# Each tool lands in its own directory (containerd-v2.4.2/, crictl-v1.37.0/),
# written to a temporary directory and renamed into place once the build
# succeeded, so a directory that exists holds a complete build. A warm run
# builds nothing. The Go build cache (GOCACHE) and module cache are Go's own,
# shared by every build, so the second containerd version reuses most of the
# first one's work.

E2E_CRICTL_VERSION=${NRI_E2E_CRICTL_VERSION:-v1.37.0}
# runc for the scenario of the device injector's NRI v0.10-v0.12 kinds
# (network devices from 1.3, scheduling policy from 1.2, memory policy from
# 1.4; Debian's runc is older), and the CNI plugins (bridge, host-local,
# loopback) that give its pod a network namespace of its own.
E2E_RUNC_VERSION=${NRI_E2E_RUNC_VERSION:-v1.4.4}
E2E_CNI_PLUGINS_VERSION=${NRI_E2E_CNI_PLUGINS_VERSION:-v1.8.0}
E2E_CACHE=${NRI_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nri-e2e}

# go_install DIR PACKAGE@VERSION... : builds into DIR unless DIR exists.
go_install() {
  local dir=$1
  shift
  if [ -f "$dir/.complete" ]; then
    return 0
  fi
  local tmp="$dir.partial.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo "building $* into $dir" >&2
  local started=$SECONDS
  # no_btrfs: the btrfs snapshotter needs C headers this run has no use for.
  # GOTOOLCHAIN=auto fetches a newer Go from the module proxy only when the
  # module asks for one the installed Go is too old for.
  if ! GOBIN="$tmp" GOFLAGS=-buildvcs=false GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" \
    timeout "${NRI_E2E_BUILD_TIMEOUT:-1800}" go install -tags no_btrfs "$@" >&2; then
    rm -rf "$tmp"
    echo "go install $* failed" >&2
    return 1
  fi
  printf 'built %s in %ss with %s\n' "$*" "$((SECONDS - started))" "$(go version)" >"$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

# containerd_tools VERSION : prints the directory holding containerd,
# containerd-shim-runc-v2 and ctr of that version, building them if needed.
containerd_tools() {
  local v=$1 m=github.com/containerd/containerd/v2/cmd
  local dir="$E2E_CACHE/containerd-$v"
  go_install "$dir" "$m/containerd@$v" "$m/containerd-shim-runc-v2@$v" "$m/ctr@$v" || return 1
  echo "$dir"
}

# crictl_tool : prints the path of crictl, building it if needed.
crictl_tool() {
  local dir="$E2E_CACHE/crictl-$E2E_CRICTL_VERSION"
  go_install "$dir" "sigs.k8s.io/cri-tools/cmd/crictl@$E2E_CRICTL_VERSION" || return 1
  echo "$dir/crictl"
}

# runc_tool : prints the path of runc $E2E_RUNC_VERSION, building it if
# needed (cgo, no seccomp: the scenario's containers set no profile).
runc_tool() {
  local dir="$E2E_CACHE/runc-$E2E_RUNC_VERSION"
  CGO_ENABLED=1 go_install "$dir" "github.com/opencontainers/runc@$E2E_RUNC_VERSION" || return 1
  echo "$dir/runc"
}

# cni_plugins_tool : prints the directory of the CNI plugins bridge,
# host-local and loopback, building them if needed.
cni_plugins_tool() {
  local dir="$E2E_CACHE/cni-plugins-$E2E_CNI_PLUGINS_VERSION" m=github.com/containernetworking/plugins/plugins
  go_install "$dir" "$m/main/bridge@$E2E_CNI_PLUGINS_VERSION" "$m/ipam/host-local@$E2E_CNI_PLUGINS_VERSION" \
    "$m/main/loopback@$E2E_CNI_PLUGINS_VERSION" || return 1
  echo "$dir"
}

# nri_version_of CONTAINERD_BINARY : the containerd/nri version built into it.
nri_version_of() {
  go version -m "$1" | awk '$1 == "dep" && $2 == "github.com/containerd/nri" { print $3 }'
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ $# -gt 0 ] || set -- v2.4.2 v2.2.9
  for v in "$@"; do
    d=$(containerd_tools "$v")
    echo "containerd $v (NRI $(nri_version_of "$d/containerd")): $d"
  done
  echo "crictl: $(crictl_tool)"
  echo "runc: $(runc_tool)"
  echo "CNI plugins: $(cni_plugins_tool)"
fi
