# shellcheck shell=bash
# The device injector's kinds of NRI v0.10-v0.12 under a real containerd
# (sourced by suite.sh): a host network interface moved into a container,
# its scheduling policy, namespaced sysctls and its memory policy. The pod
# has a network namespace of its own (a CNI bridge network) and runs
# under runc $NRI_E2E_RUNC_LINUX (runtime handler runc-linux), which applies
# all four; every adjustment is checked in the OCI spec and in the
# container.
#
# Runtimes apply network devices and the scheduling policy from NRI v0.11.0,
# sysctls and the memory policy from v0.12.0 (a v0.11 runtime panics merging
# a sysctl). The device injector refuses a kind the runtime's NRI cannot
# apply: on containerd 2.2 (NRI v0.11.0) the containers asking for a sysctl
# or a memory policy are refused with its reason, and are named reject-*.

# nri_at_least VERSION : the containerd under test embeds NRI VERSION or newer.
nri_at_least() {
  [ "$(printf '%s\n%s\n' "$1" "$NRI_VERSION" | sort -V | head -n 1)" = "$1" ]
}

# The host network interface to move: a dummy where the kernel has the
# driver, else one end of a veth pair. Names are unique per suite.sh.
LINK_HOST=ne$$h
LINK_PEER=ne$$p

make_host_link() {
  if ip link add "$LINK_HOST" type dummy 2>/dev/null; then
    HOST_LINKS+=("$LINK_HOST")
    ev "host interface $LINK_HOST: dummy"
  elif ip link add "$LINK_HOST" type veth peer name "$LINK_PEER" 2>"$D/err"; then
    HOST_LINKS+=("$LINK_HOST" "$LINK_PEER")
    ev "host interface $LINK_HOST: a veth (peer $LINK_PEER; this kernel has no dummy driver)"
  else
    bad "cannot create a network interface on the host: $(cat "$D/err")"
    return 1
  fi
  ip link set "$LINK_HOST" up 2>/dev/null
}

# run_pod_netns NAME ANNOTATIONS_JSON : a pod with a network namespace of its
# own, under runtime handler runc-linux; prints its id.
run_pod_netns() {
  jq -n --arg name "$1" --arg uid "uid-$1-$RUN_ID" --arg logs "$D/logs/$1" \
    --arg cg "$CGROUP_PARENT" --argjson ann "$2" '{
    metadata: {name: $name, namespace: "nri-e2e", uid: $uid, attempt: 0},
    log_directory: $logs,
    annotations: $ann,
    linux: {cgroup_parent: $cg,
            security_context: {namespace_options: {network: 0}}}
  }' >"$D/specs/pod-$1.json"
  cri runp --runtime runc-linux "$D/specs/pod-$1.json"
}

# start_ctr_netns POD_NAME POD_ID NAME : a container in the pod's network
# namespace, in a PID namespace of its own; prints its id.
start_ctr_netns() {
  local id
  jq -n --arg name "$3" --arg image "$BUSYBOX_IMAGE" --arg script "$CTR_SCRIPT" '{
    metadata: {name: $name},
    image: {image: $image},
    command: ["/bin/sh", "-c", $script],
    log_path: ($name + ".log"),
    linux: {security_context: {namespace_options: {network: 0, pid: 1}}}
  }' >"$D/specs/ctr-$3.json"
  id=$(cri create "$2" "$D/specs/ctr-$3.json" "$D/specs/pod-$1.json") || return 1
  cri start "$id" >/dev/null || return 1
  echo "$id"
}

# The annotations: l0 gets a network device and a scheduling policy, l1 (and
# on containerd 2.2 reject-sysctl and reject-mpol) sysctls and a memory
# policy.
linux_annotations() {
  local sysctl='net.ipv4.ip_unprivileged_port_start: 80
kernel.shmmni: 2048
' mpol='mode: MPOL_INTERLEAVE
nodes: "0"
'
  jq -n --arg host "$LINK_HOST" --arg sysctl "$sysctl" --arg mpol "$mpol" '{
    "network-devices.noderesource.dev/container.l0": ("- hostIf: " + $host + "\n  name: netdev0\n"),
    "scheduling-policy.noderesource.dev/container.l0": "policy: SCHED_BATCH\nnice: 7\n",
    "sysctl.noderesource.dev/container.l1": $sysctl,
    "memory-policy.noderesource.dev/container.l1": $mpol,
    "sysctl.noderesource.dev/container.reject-sysctl": $sysctl,
    "memory-policy.noderesource.dev/container.reject-mpol": $mpol,
    "cpu-rebalancer.nri.io/skip": "true"
  }'
}

verify_netdev_and_sched() {
  local id=$1 out
  ev "spec linux.netDevices: $(spec "$id" '.info.runtimeSpec.linux.netDevices')"
  ev "spec process.scheduler: $(spec "$id" '.info.runtimeSpec.process.scheduler')"
  expect_eq "network device in the spec (host interface -> name)" \
    "$(spec "$id" '.info.runtimeSpec.linux.netDevices["'"$LINK_HOST"'"].name')" '"netdev0"'
  expect_eq "scheduling policy in the spec" \
    "$(spec "$id" '.info.runtimeSpec.process.scheduler | "\(.policy) nice \(.nice)"')" '"SCHED_BATCH nice 7"'
  out=$(in_ctr "$id" '
    grep -o "netdev0" /proc/net/dev | sed "s/^/link=/"
    awk "{ print \"sched=policy \" \$41 \" nice \" \$19 }" /proc/1/stat')
  ev "in the container:"
  ev_lines "  | " <<<"$out"
  expect_match "the container has netdev0 (moved from the host)" "$out" "^link=netdev0$"
  if ip link show "$LINK_HOST" >/dev/null 2>&1; then
    bad "$LINK_HOST is still in the host's network namespace"
  else
    ev "ok: $LINK_HOST is gone from the host's network namespace"
  fi
  # SCHED_BATCH is policy 3 in /proc/PID/stat (field 41), nice field 19.
  expect_match "the container's init runs SCHED_BATCH at nice 7" "$out" "^sched=policy 3 nice 7$"
}

verify_sysctl_and_mpol() {
  local id=$1 out
  ev "spec linux.sysctl: $(spec "$id" '.info.runtimeSpec.linux.sysctl')"
  ev "spec linux.memoryPolicy: $(spec "$id" '.info.runtimeSpec.linux.memoryPolicy')"
  expect_eq "sysctls in the spec" \
    "$(spec "$id" '.info.runtimeSpec.linux.sysctl | [.["net.ipv4.ip_unprivileged_port_start"], .["kernel.shmmni"]]')" '["80","2048"]'
  expect_eq "memory policy in the spec" \
    "$(spec "$id" '.info.runtimeSpec.linux.memoryPolicy | "\(.mode) \(.nodes)"')" '"MPOL_INTERLEAVE 0"'
  out=$(in_ctr "$id" '
    echo "port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"
    echo "shmmni=$(cat /proc/sys/kernel/shmmni)"
    grep -o -m 1 "interleave[^ ]*" /proc/1/numa_maps | sed "s/^/mpol=/"')
  ev "in the container:"
  ev_lines "  | " <<<"$out"
  expect_match "net.ipv4.ip_unprivileged_port_start in the container's network namespace" "$out" "^port_start=80$"
  expect_match "kernel.shmmni in the container's IPC namespace" "$out" "^shmmni=2048$"
  ev "on the host: ip_unprivileged_port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start), shmmni=$(cat /proc/sys/kernel/shmmni)"
  expect_match "the container's init allocates interleaved over node 0" "$out" "^mpol=interleave:0$"
}

# expect_refused NAME WHAT ERE : creating container NAME in the pod fails
# with the device injector's reason matching ERE, and leaves no container.
expect_refused() {
  local out
  if out=$(start_ctr e2e-linux "$LINUX_POD" "$1" 2>&1); then
    bad "container $1 was created and started ($2 should have been refused)"
  else
    ev "crictl create $1: $(grep -o 'desc = .*' <<<"$out" | head -n 1 | cut -c1-300)"
    expect_match "crictl shows the device injector's reason ($2)" "$out" "$3"
  fi
  expect_eq "containers named $1" "$(cri ps -a --pod "$LINUX_POD" --name "^$1\$" -q | grep -c .)" 0
}

LINUX_POD=""

check_linux_kinds() {
  begin_check "device-injector: a network device, a scheduling policy, sysctls and a memory policy from the pod's annotations (OCI spec, and in the container; NRI $NRI_VERSION)"
  if ! make_host_link; then
    end_check
    return
  fi
  if ! LINUX_POD=$(run_pod_netns e2e-linux "$(linux_annotations)" 2>"$D/err"); then
    bad "crictl runp (own network namespace, runtime runc-linux) failed: $(cat "$D/err")"
    end_check
    return
  fi
  ev "pod e2e-linux: $LINUX_POD (runtime handler runc-linux: $("${NRI_E2E_RUNC_LINUX:-$RUNC}" --version | head -n 1))"
  local id
  if nri_at_least v0.11.0; then
    if id=$(start_ctr_netns e2e-linux "$LINUX_POD" l0 2>"$D/err"); then
      ev "container l0: $id"
      verify_netdev_and_sched "$id"
    else
      bad "container l0 did not start: $(cat "$D/err")"
    fi
  fi
  if nri_at_least v0.12.0; then
    if id=$(start_ctr_netns e2e-linux "$LINUX_POD" l1 2>"$D/err"); then
      ev "container l1: $id"
      verify_sysctl_and_mpol "$id"
    else
      bad "container l1 did not start: $(cat "$D/err")"
    fi
  else
    # Refused with the plugin's reason instead of crashing or being dropped.
    expect_refused reject-sysctl "a sysctl on NRI $NRI_VERSION" \
      "the runtime's NRI $NRI_VERSION cannot apply sysctl annotations"
    expect_refused reject-mpol "a memory policy on NRI $NRI_VERSION" \
      "the runtime's NRI $NRI_VERSION cannot apply memory-policy annotations"
    if alive "$CTRD_PID"; then
      ev "ok: containerd (pid $CTRD_PID) still runs"
    else
      bad "containerd exited"
    fi
  fi
  end_check
}
