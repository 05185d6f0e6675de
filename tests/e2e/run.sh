#!/usr/bin/env bash
# End-to-end tests: the example plugins against a real containerd, with real
# pods and containers (runc), for each containerd version asked for.
#
#   tests/e2e/run.sh [--containerd VERSION]... [--keep]
#
# Default versions: $NRI_E2E_CONTAINERD, else v2.4.2 and v2.2.9 (the newest
# 2.4.x and 2.2.x, embedding NRI v0.12.3 and v0.11.0). Needs root, cgroups,
# Go, cargo and Debian's apt-get (it installs runc, busybox-static, jq,
# python3 and procps when missing). See tests/e2e/README.md.
#
# Prints each scenario's evidence and PASS/FAIL, ends with `N passed, M
# failed`, and exits non-zero if any check failed. Where this machine cannot
# run containers at all it says SKIP loudly and exits 1, or 0 when
# NRI_E2E_ALLOW_SKIP=1.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/tools.sh
. "$HERE/tools.sh"

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

versions=()
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --containerd) [ $# -ge 2 ] || { usage >&2; exit 2; }; versions+=("$2"); shift 2 ;;
    --containerd=*) versions+=("${1#*=}"); shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ ${#versions[@]} -eq 0 ]; then
  read -r -a versions <<<"${NRI_E2E_CONTAINERD:-v2.4.2 v2.2.9}"
fi
for v in "${versions[@]}"; do
  case "$v" in
    v[0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "containerd version must look like v2.4.2, got '$v'" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }
started_at=$SECONDS

skip() {
  cat <<EOF

  ###########################################################################
  ##  SKIP: end-to-end tests against containerd NOT RUN
  ##  $1
  ##  Nothing was tested. Set NRI_E2E_ALLOW_SKIP=1 to accept this.
  ###########################################################################

EOF
  if [ "${NRI_E2E_ALLOW_SKIP:-}" = 1 ]; then
    exit 0
  fi
  exit 1
}

# ------------------------------------------------------------- preflight ----
step "can this machine run containers?"
[ "$(uname -s)" = Linux ] || skip "not Linux ($(uname -s))"
[ "$(id -u)" = 0 ] || skip "not root (uid $(id -u)): containerd and runc need root here"
probe_cg=""
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo "cgroup v2: $(cat /sys/fs/cgroup/cgroup.controllers)"
  probe_cg=/sys/fs/cgroup/nri-e2e-probe-$$
else
  for c in memory cpuset devices pids; do
    [ -d "/sys/fs/cgroup/$c" ] || skip "no cgroup v2 and no cgroup v1 '$c' controller under /sys/fs/cgroup"
  done
  echo "cgroup v1: $(cd /sys/fs/cgroup && echo *)"
  probe_cg=/sys/fs/cgroup/memory/nri-e2e-probe-$$
fi
if ! mkdir "$probe_cg" 2>/dev/null; then
  skip "cannot create a cgroup ($probe_cg)"
fi
rmdir "$probe_cg"
if ! unshare --mount --pid --uts --ipc --fork true 2>/dev/null; then
  skip "cannot create namespaces (unshare --mount --pid --uts --ipc failed)"
fi
echo "root, cgroups and namespaces: yes"
# containerd's overlayfs snapshotter where the kernel lets us mount an
# overlay here, else the native one (copies; slower, same behaviour).
if [ -z "${NRI_E2E_SNAPSHOTTER:-}" ]; then
  probe=$(mktemp -d "${NRI_E2E_TMPDIR:-${TMPDIR:-/tmp}}/nri-e2e-overlay.XXXXXX")
  mkdir "$probe"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
    "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    export NRI_E2E_SNAPSHOTTER=overlayfs
  else
    export NRI_E2E_SNAPSHOTTER=native
  fi
  rm -rf "$probe"
fi
echo "snapshotter: $NRI_E2E_SNAPSHOTTER"

# ------------------------------------------------------------------ tools ----
step "packages: runc, busybox-static, jq, python3, procps, iproute2"
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    timeout 600 apt-get update -qq || { echo "apt-get update failed" >&2; return 1; }
    apt_updated=1
  fi
  echo "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "$@" >/dev/null
}
missing=()
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "missing ${missing[*]} and no apt-get to install them" >&2; exit 1; }
  apt_install "${missing[@]}" || { echo "cannot install ${missing[*]}" >&2; exit 1; }
fi
echo "runc: $(runc --version | head -n 1); busybox: $(/bin/busybox | head -n 1); jq: $(jq --version)"

if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin /usr/lib/go/bin; do
    [ -x "$d/go" ] && export PATH="$d:$PATH" && break
  done
fi
command -v go >/dev/null 2>&1 || { echo "go not found: install Go (>= 1.26.6 for containerd 2.4)" >&2; exit 1; }
command -v cargo >/dev/null 2>&1 || { [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"; }
command -v cargo >/dev/null 2>&1 || { echo "cargo not found" >&2; exit 1; }

step "containerd, shim, ctr and crictl (cache: $E2E_CACHE)"
t=$SECONDS
declare -A ctrd_dir=() nri_of=()
for v in "${versions[@]}"; do
  ctrd_dir[$v]=$(containerd_tools "$v") || { echo "cannot build containerd $v" >&2; exit 1; }
  nri_of[$v]=$(nri_version_of "${ctrd_dir[$v]}/containerd")
  echo "containerd $v (NRI ${nri_of[$v]:-unknown}): ${ctrd_dir[$v]} ($(cat "${ctrd_dir[$v]}/.complete"))"
done
crictl=$(crictl_tool) || { echo "cannot build crictl" >&2; exit 1; }
echo "crictl $E2E_CRICTL_VERSION: $crictl"
NRI_E2E_RUNC_LINUX=$(runc_tool) || { echo "cannot build runc $E2E_RUNC_VERSION" >&2; exit 1; }
NRI_E2E_CNI_BIN=$(cni_plugins_tool) || { echo "cannot build the CNI plugins" >&2; exit 1; }
export NRI_E2E_RUNC_LINUX NRI_E2E_CNI_BIN
echo "runc $E2E_RUNC_VERSION (network devices, scheduling and memory policy): $NRI_E2E_RUNC_LINUX ($("$NRI_E2E_RUNC_LINUX" --version | head -n 1))"
echo "CNI plugins $E2E_CNI_PLUGINS_VERSION (bridge, host-local, loopback): $NRI_E2E_CNI_BIN"
tools_time=$((SECONDS - t))
echo "tools ready in ${tools_time}s"

t=$SECONDS
if [ -n "${NRI_E2E_EXAMPLES_DIR:-}" ]; then
  step "example plugins (given: $NRI_E2E_EXAMPLES_DIR)"
  examples=$NRI_E2E_EXAMPLES_DIR
else
  step "example plugins (cargo build --examples)"
  (cd "$REPO" && timeout 1800 cargo build --examples) || { echo "cargo build --examples failed" >&2; exit 1; }
  target_dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory)
  examples="${target_dir:-$REPO/target}/debug/examples"
fi
for name in device-injector ulimit-adjuster hook-injector logger template memory-defaulter cpu-rebalancer validator; do
  [ -x "$examples/$name" ] || { echo "missing example binary $examples/$name" >&2; exit 1; }
done
build_time=$((SECONDS - t))
echo "examples built in ${build_time}s: $examples"

# ------------------------------------------------------------------- run ----
top=$(mktemp -d "${NRI_E2E_TMPDIR:-${TMPDIR:-/tmp}}/nri-e2e.XXXXXX")
results=$top/results
: >"$results"
finish() {
  local status=$?
  trap - EXIT
  if [ -n "$keep" ] || [ -n "${NRI_E2E_KEEP:-}" ]; then
    echo "logs kept in $top"
  elif awk -v d="$top/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "mounts remain under $top: leaving it in place" >&2
  else
    rm -rf --one-file-system "$top"
  fi
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

declare -A suite_time=()
for v in "${versions[@]}"; do
  step "containerd $v (NRI ${nri_of[$v]:-unknown}): scenarios"
  t=$SECONDS
  dir=$top/$v
  mkdir -p "$dir"
  NRI_E2E_KEEP=${keep:-${NRI_E2E_KEEP:-}} python3 "$HERE/subreaper.py" "$dir/reaped.log" -- \
    bash "$HERE/suite.sh" "$v" "${nri_of[$v]:-unknown}" "${ctrd_dir[$v]}" "$crictl" "$examples" "$results" "$dir"
  status=$?
  if [ "$status" -ne 0 ]; then
    printf 'FAIL\t%s\t%s\n' "$v" "the scenarios ended early (status $status)" >>"$results"
  fi
  suite_time[$v]=$((SECONDS - t))
done

# --------------------------------------------------------------- summary ----
step "summary"
for v in "${versions[@]}"; do
  echo "containerd $v (NRI ${nri_of[$v]:-unknown}), ${suite_time[$v]}s:"
  awk -F '\t' -v v="$v" '$2 == v { printf "  %s  %s\n", $1, $3 }' "$results"
done
echo "time: tools ${tools_time}s, examples ${build_time}s, scenarios $(for v in "${versions[@]}"; do printf '%s %ss ' "$v" "${suite_time[$v]}"; done)total $((SECONDS - started_at))s"
passed=$(grep -c '^PASS' "$results")
failed=$(grep -c '^FAIL' "$results")
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "no check ran" >&2
  failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
