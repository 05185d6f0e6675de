#!/usr/bin/env bash
# One containerd version through every end-to-end scenario. Started by
# run.sh under subreaper.py (which records how orphaned processes end):
#
#   suite.sh VERSION NRI_VERSION CONTAINERD_DIR CRICTL EXAMPLES_DIR RESULTS DIR
#
# Everything lives under DIR (an empty directory run.sh made, which it
# removes afterwards); everything started is ended by PID on exit, failure
# or interrupt, mounts under DIR are unmounted and cgroups removed (see
# cleanup below).
set -uo pipefail

VERSION=$1 NRI_VERSION=$2 CTRD_BIN=$3 CRICTL=$4 EXAMPLES=$5 RESULTS=$6 D=$7
HERE=$(cd "$(dirname "$0")" && pwd)
# NRI_E2E_TRACE=FILE: every command of this script traced to FILE.
if [ -n "${NRI_E2E_TRACE:-}" ]; then
  exec {trace_fd}>>"$NRI_E2E_TRACE"
  BASH_XTRACEFD=$trace_fd
  set -x
fi
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

: "${NRI_E2E_REAPER_PID:?suite.sh runs under subreaper.py (see run.sh)}"
case "$D" in
  /*[[:space:]]* | "" | / | [!/]*) echo "suite.sh: bad directory '$D'" >&2; exit 1 ;;
esac
# Unique per run and version: nri-e2e-<suffix of run.sh's directory>-v2-4-2.
RUN_ID=$(basename "$(dirname "$D")")
RUN_ID=${RUN_ID##*.}-$(tr '.' '-' <<<"$VERSION")
CGROUP_PARENT=/nri-e2e-$RUN_ID
NRI_SOCK=$D/nri/nri.sock
CTRD_LOG=$D/containerd.log
REAPED=$D/reaped.log
RUNC=${NRI_E2E_RUNC:-$(command -v runc)}
SNAPSHOTTER=${NRI_E2E_SNAPSHOTTER:-overlayfs}
BUSYBOX_IMAGE=docker.io/library/nri-e2e-busybox:1
PAUSE_IMAGE=docker.io/library/nri-e2e-pause:1
SHIM_SOCKET_DIR=/run/containerd/s
SHIM_SOCKET_DIR_EXISTED=no
[ -d "$SHIM_SOCKET_DIR" ] && SHIM_SOCKET_DIR_EXISTED=yes
mkdir -p "$D"/{nri/plugins,nri/conf.d,cni/bin,cni/net.d,logs,specs,plugins,bin,hooks.d,share/ro,share/rw,cdi,tmp}

# Plugins: name, index, how they run. (The validator runs for one check only.)
RECONNECTING=(device-injector ulimit-adjuster template)
PLAIN=(hook-injector cpu-rebalancer)
LAUNCHED=(logger memory-defaulter)
declare -A IDX=([logger]=05 [memory-defaulter]=10 [device-injector]=20 [ulimit-adjuster]=30
  [hook-injector]=40 [cpu-rebalancer]=50 [template]=90 [validator]=95)
declare -A PID=() # external plugins: their PIDs (children of this shell)
HOST_LINKS=()     # network interfaces made on the host, deleted at the end

plugin_log() { echo "$D/plugins/$1.log"; }

# The value the pods ask for, and the failure marker.
MEM_DEFAULT=134217728
MEM_UPDATED=268435456
BAD_TYPE=nosuchlimit

# ----------------------------------------------------------------- cleanup ----

cleanup() {
  local status=$?
  trap - EXIT
  trap '' INT TERM # a second interrupt must not cut the cleanup short
  set +e
  printf '\n--- [containerd %s] cleanup of %s\n' "$VERSION" "$D"
  if alive "$CTRD_PID"; then
    local p
    for p in $(timeout 20 "$CRICTL" --config "$D/crictl.yaml" pods -q 2>/dev/null); do
      timeout 20 "$CRICTL" --config "$D/crictl.yaml" stopp "$p" >/dev/null 2>&1
      timeout 20 "$CRICTL" --config "$D/crictl.yaml" rmp "$p" >/dev/null 2>&1
    done
  fi
  local name
  for name in "${!PID[@]}"; do
    stop_pid "${PID[$name]}" 5
  done
  stop_pid "$CTRD_PID" 15
  # Whatever was re-parented to the subreaper: shims, launched plugins,
  # container processes whose shim went away.
  local round kids
  for round in $(seq 1 40); do
    kids=$(pgrep -P "$NRI_E2E_REAPER_PID" | grep -v -x "$$")
    [ -n "$kids" ] || break
    echo "    ending re-parented processes: $(tr '\n' ' ' <<<"$kids")"
    # shellcheck disable=SC2086 # one PID a word
    kill -KILL $kids 2>/dev/null
    sleep 0.25
  done
  local runc root ns id
  for runc in "$RUNC:$D/runc" "${NRI_E2E_RUNC_LINUX:-$RUNC}:$D/runc-linux"; do
    root=${runc#*:} runc=${runc%%:*}
    if [ ! -x "$runc" ] || [ ! -d "$root" ]; then continue; fi
    for ns in "$root"/*/; do
      [ -d "$ns" ] || continue
      for id in $(timeout 10 "$runc" --root "$ns" list -q 2>/dev/null); do
        echo "    runc delete -f $id"
        timeout 10 "$runc" --root "$ns" delete -f "$id" >/dev/null 2>&1
      done
    done
  done
  # The host end of the network device the device injector moved (a veth
  # pair ends with its container's network namespace; a dummy does not).
  local link
  for link in "${HOST_LINKS[@]}"; do
    ip link show "$link" >/dev/null 2>&1 && ip link delete "$link" 2>/dev/null && echo "    ip link delete $link"
  done
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "    cannot unmount $m"
  done < <(awk -v d="$D/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  local cg
  for cg in /sys/fs/cgroup/*"$CGROUP_PARENT" /sys/fs/cgroup"$CGROUP_PARENT"; do
    [ -d "$cg" ] || continue
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$cg" ] && echo "    cannot remove cgroup $cg"
  done
  # Sockets of shims that were killed stay behind in containerd's fixed
  # shim socket directory: remove ours, by the names the bundles recorded.
  local sock
  while read -r sock; do
    rm -f "${sock#unix://}"
  done < <(grep -rhoE "unix://$SHIM_SOCKET_DIR/[0-9a-f]{64}" "$D/state" 2>/dev/null | sort -u)
  if [ "$SHIM_SOCKET_DIR_EXISTED" = no ]; then
    rmdir "$SHIM_SOCKET_DIR" 2>/dev/null && rmdir "$(dirname "$SHIM_SOCKET_DIR")" 2>/dev/null
  fi
  if awk -v d="$D/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "    mounts remain under $D"
  elif [ -z "${NRI_E2E_KEEP:-}" ]; then
    # The state directories are large and useless once everything ended; the
    # logs stay for run.sh (which removes the whole directory unless --keep).
    rm -rf --one-file-system "$D/root" "$D/state" "$D/runc" "$D/runc-linux" 2>/dev/null
  fi
  exit "$status"
}
trap cleanup EXIT
# Ctrl-C reaches this shell twice (from the terminal and from subreaper.py):
# the first one starts the cleanup, later ones are ignored.
trap 'trap "" INT TERM; echo "interrupted" >&2; exit 130' INT
trap 'trap "" INT TERM; echo "terminated" >&2; exit 143' TERM

# -------------------------------------------------------------- fixtures ----

# The hook the hook-injector injects: records each run on the host and, at
# createRuntime, leaves a file in the container's root filesystem.
cat >"$D/bin/e2e-hook" <<EOF
#!/bin/sh
# OCI hook for the NRI end-to-end run: \$1 is the stage, stdin the state.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
state=\$(cat)
id=\$(printf '%s' "\$state" | jq -r .id)
bundle=\$(printf '%s' "\$state" | jq -r .bundle)
echo "\$1 \$id" >>"$D/hooks.log"
if [ "\$1" = createRuntime ]; then
  root=\$(jq -r .root.path "\$bundle/config.json")
  case "\$root" in /*) ;; *) root="\$bundle/\$root" ;; esac
  echo "\$1 \$id" >"\$root/nri-hook-ran"
fi
EOF
chmod 0755 "$D/bin/e2e-hook"
for stage in createRuntime poststop; do
  jq -n --arg path "$D/bin/e2e-hook" --arg stage "$stage" '{
    version: "1.0.0",
    hook: {path: $path, args: ["e2e-hook", $stage]},
    when: {annotations: {"^e2e\\.nri\\.io/hook$": "^yes$"}},
    stages: [$stage]
  }' >"$D/hooks.d/50-e2e-$stage.json"
done
echo "hello from the host" >"$D/share/ro/hello"

# A CNI network (a bridge without an address on the host, host-local
# addresses) for the one pod with a network namespace of its own
# (scenarios_linux.sh); the other pods use the host's network.
CNI_BRIDGE=nb$$
if [ -n "${NRI_E2E_CNI_BIN:-}" ]; then
  for p in bridge host-local loopback; do
    install -m 0755 "$NRI_E2E_CNI_BIN/$p" "$D/cni/bin/$p"
  done
  jq -n --arg name "nri-e2e-$RUN_ID" --arg bridge "$CNI_BRIDGE" --arg ipam "$D/cni/ipam" '{
    cniVersion: "1.0.0", name: $name,
    plugins: [{type: "bridge", bridge: $bridge, isGateway: false, ipMasq: false,
               ipam: {type: "host-local", dataDir: $ipam, subnet: "10.254.254.0/24"}}]
  }' >"$D/cni/net.d/10-nri-e2e.conflist"
  HOST_LINKS+=("$CNI_BRIDGE")
fi

cat >"$D/crictl.yaml" <<EOF
runtime-endpoint: unix://$D/containerd.sock
image-endpoint: unix://$D/containerd.sock
timeout: 60
EOF

# Pre-registered plugins: the binary as NN-name, the configuration in conf.d.
for name in "${LAUNCHED[@]}"; do
  install -m 0755 "$EXAMPLES/$name" "$D/nri/plugins/${IDX[$name]}-$name"
done
cat >"$D/nri/conf.d/05-logger.conf" <<EOF
# Read by containerd and sent to the logger in Configure. (addAnnotation, not
# setAnnotation: containerd applies a removal and an addition of the same
# annotation in random order, so a set annotation is lost in some creations.)
logFile: $(plugin_log logger)
addAnnotation: logger.nri.io/seen-by
setEnv: NRI_LOGGER
EOF

# The validator's policy: no plugin may inject OCI hooks.
echo "rejectOCIHookAdjustment: true" >"$D/validator.yaml"

write_containerd_config

# start_external NAME [reconnect] : starts an external plugin in the background.
start_external() {
  local name=$1 reconnect=()
  [ "${2:-}" = reconnect ] && reconnect=(-reconnect)
  local extra=()
  case "$name" in
    hook-injector) extra=(-hook-dir "$D/hooks.d") ;;
    validator) extra=(-config "$D/validator.yaml") ;;
  esac
  "$EXAMPLES/$name" -idx "${IDX[$name]}" -socket "$NRI_SOCK" -log-file "$(plugin_log "$name")" \
    "${reconnect[@]}" "${extra[@]}" >>"$D/plugins/$name.out" 2>&1 &
  PID[$name]=$!
}

# The annotations of the pods.
ADJUST_ANNOTATIONS=$(jq -n --arg d "$D" --arg mem "$MEM_DEFAULT" '{
  "devices.noderesource.dev/pod": "- path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n  file_mode: 0666\n",
  "mounts.noderesource.dev/pod": ("- source: " + $d + "/share/ro\n  destination: /mnt/nri-ro\n  type: bind\n  options: [bind, ro]\n- source: " + $d + "/share/rw\n  destination: /mnt/nri-rw\n  type: bind\n  options: [bind, rw]\n"),
  "ulimits.noderesource.dev/container.c0": "- type: nofile\n  hard: 4096\n  soft: 1024\n- type: RLIMIT_MEMLOCK\n  hard: 1048576\n  soft: 524288\n",
  "ulimits.noderesource.dev/container.c1": "- type: nofile\n  hard: 4096\n  soft: 1024\n- type: RLIMIT_MEMLOCK\n  hard: 1048576\n  soft: 524288\n",
  "ulimits.noderesource.dev/container.c2": "- type: nofile\n  hard: 4096\n  soft: 1024\n- type: RLIMIT_MEMLOCK\n  hard: 1048576\n  soft: 524288\n",
  "e2e.nri.io/hook": "yes",
  "memory-defaulter.example.com/limit": $mem,
  "cpu-rebalancer.nri.io/skip": "true"
}')
REBALANCE_ANNOTATIONS='{}'
# Containers meant to be refused are named reject-*.
FAILING_ANNOTATIONS=$(jq -n --arg t "$BAD_TYPE" '{
  "ulimits.noderesource.dev/container.reject-ulimit": ("- type: " + $t + "\n  hard: 1\n  soft: 1\n"),
  "required-plugins.noderesource.dev/container.reject-required": "- no-such-plugin\n",
  "ulimits.noderesource.dev/container.good": "- type: nofile\n  hard: 2048\n  soft: 512\n",
  "cpu-rebalancer.nri.io/skip": "true"
}')

. "$HERE/scenarios.sh"
. "$HERE/scenarios_restart.sh"
. "$HERE/scenarios_linux.sh"

# ------------------------------------------------------------------- run ----

echo "containerd $VERSION (NRI $NRI_VERSION) from $CTRD_BIN; temporary directory $D"
if ! check_containerd_starts; then
  echo "containerd $VERSION did not start: the other scenarios cannot run" >&2
  tail -n 30 "$CTRD_LOG" | sed 's/^/    containerd: /'
  exit 1
fi
check_external_reconnecting
check_external_plain
check_launched
check_pod_and_container_start
check_devices "$C0"
check_mounts "$C0"
check_rlimits "$C0"
check_env_and_annotation "$C0"
check_hooks "$C0"
check_memory_default "$C0"
check_update
check_rebalancer
check_failing_plugin
check_validator
check_kill_containerd
check_restart_after_kill
check_new_container_adjusted c1
check_graceful_stop
check_restart_after_graceful_stop
check_new_container_adjusted c2
check_stop_and_remove
check_linux_kinds
check_external_plugins_stop_on_sigterm
check_log_no_nri_error
check_log_no_deprecation
check_log_nri_version
check_nri_log_sample
. "$HERE/scenarios_ports.sh"
# Every check ran (whatever it found): the results are in $RESULTS.
exit 0
