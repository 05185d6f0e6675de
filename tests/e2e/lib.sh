# shellcheck shell=bash
# Helpers of the end-to-end suite (sourced by suite.sh): the check framework,
# bounded waits, processes, containerd, crictl and cgroups.
#
# Every wait here is bounded: a hang becomes a failed check, never a stuck run.

# ---------------------------------------------------------------- checks ----
# A check prints its evidence, then PASS or FAIL; the result goes to
# $RESULTS (one line per check: PASS|FAIL, containerd version, name).

CHECK_NAME=""
CHECK_BAD=0

begin_check() {
  CHECK_NAME=$1
  CHECK_BAD=0
  printf '\n--- [containerd %s] %s\n' "$VERSION" "$CHECK_NAME"
}

# ev TEXT... : one line of evidence.
ev() { printf '    %s\n' "$*"; }

# ev_lines PREFIX < TEXT : evidence, one line per input line (at most 40).
ev_lines() {
  local prefix=$1 n=0 line
  while IFS= read -r line; do
    n=$((n + 1))
    if [ "$n" -le 40 ]; then
      printf '    %s%s\n' "$prefix" "$line"
    fi
  done
  if [ "$n" -gt 40 ]; then
    printf '    %s... (%d lines in all)\n' "$prefix" "$n"
  fi
}

# bad TEXT... : the check fails, for this reason.
bad() {
  CHECK_BAD=1
  printf '    !! %s\n' "$*"
}

end_check() {
  local verdict=PASS
  [ "$CHECK_BAD" -eq 0 ] || verdict=FAIL
  printf '    => %s: %s\n' "$verdict" "$CHECK_NAME"
  printf '%s\t%s\t%s\n' "$verdict" "$VERSION" "$CHECK_NAME" >>"$RESULTS"
}

# expect_eq WHAT GOT WANT
expect_eq() {
  if [ "$2" = "$3" ]; then
    ev "ok: $1 = $2"
  else
    bad "$1: got '$2', want '$3'"
  fi
}

# expect_match WHAT TEXT ERE : TEXT has a line matching ERE.
expect_match() {
  local hit
  hit=$(grep -E -m1 -e "$3" <<<"$2")
  if [ -n "$hit" ]; then
    ev "ok: $1: $(cut -c1-200 <<<"$hit")"
  else
    bad "$1: no line matches /$3/"
  fi
}

# expect_no_match WHAT TEXT ERE : no line of TEXT matches ERE.
expect_no_match() {
  local hits
  hits=$(grep -E -e "$3" <<<"$2")
  if [ -z "$hits" ]; then
    ev "ok: $1"
  else
    bad "$1: $(grep -c '' <<<"$hits") line(s) match /$3/:"
    cut -c1-300 <<<"$hits" | ev_lines "      "
  fi
}

# wait_for SECONDS COMMAND... : polls COMMAND until it succeeds (0) or the
# time is up (1).
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while :; do
    if "$@"; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.25
  done
}

# ------------------------------------------------------------- processes ----

# alive PID : the process exists and is not a zombie.
alive() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

gone() { ! alive "$1"; }

# reaped_status PID : how an orphan re-parented to the subreaper ended
# ("exited N" or "killed-by N"), empty while it has not.
reaped_status() {
  awk -v p="$1" '$1 == p { print $2, $3; exit }' "$REAPED" 2>/dev/null
}

reaped() { [ -n "$(reaped_status "$1")" ]; }

declare -A CHILD_STATUS=()

# reap PID : waits for a background job of this shell that has ended and
# records its exit status in CHILD_STATUS. It must run in this shell, not in
# a $(...) subshell: a subshell cannot wait for its parent's children, and
# whether the parent reaped the job before the subshell was made is a race.
reap() {
  if [ -z "${CHILD_STATUS[$1]:-}" ]; then
    wait "$1" 2>/dev/null
    CHILD_STATUS[$1]=$?
  fi
}

# child_status PID : the exit status reap recorded (reaping first when
# called in this shell).
child_status() {
  reap "$1"
  echo "${CHILD_STATUS[$1]}"
}

# stop_pid PID SECONDS : SIGTERM, then SIGKILL after SECONDS.
stop_pid() {
  alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null
  wait_for "$2" gone "$1" || kill -KILL "$1" 2>/dev/null
  wait_for 5 gone "$1"
}

# ------------------------------------------------------------ containerd ----

CTRD_PID=""
CTRD_STARTS=0

write_containerd_config() {
  cat >"$D/config.toml" <<EOF
# containerd for the NRI end-to-end run: everything under $D.
version = 3
root = "$D/root"
state = "$D/state"
temp = "$D/tmp"

[grpc]
  address = "$D/containerd.sock"
[ttrpc]
  address = "$D/containerd.sock.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$D/opt"
  [plugins."io.containerd.image-verifier.v1.bindir"]
    bin_dir = "$D/opt/image-verifier/bin"
  [plugins."io.containerd.nri.v1.nri"]
    disable = false
    disable_connections = false
    plugin_path = "$D/nri/plugins"
    plugin_config_path = "$D/nri/conf.d"
    plugin_registration_timeout = "5s"
    plugin_request_timeout = "2s"
    socket_path = "$NRI_SOCK"
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "$SNAPSHOTTER"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "$PAUSE_IMAGE"
  [plugins."io.containerd.cri.v1.runtime"]
    # Root here may lack CAP_SYS_RESOURCE: do not lower the sandbox's
    # oom_score_adj below containerd's own.
    restrict_oom_score_adj = true
    cdi_spec_dirs = ["$D/cdi"]
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = "$RUNC"
          Root = "$D/runc"
          SystemdCgroup = false
      # A newer runc (run.sh: NRI_E2E_RUNC_LINUX) for the pod of the device
      # injector's NRI v0.10-v0.12 kinds (crictl runp --runtime runc-linux).
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc-linux]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc-linux.options]
          BinaryName = "${NRI_E2E_RUNC_LINUX:-$RUNC}"
          Root = "$D/runc-linux"
          SystemdCgroup = false
    # Pods use the host's network (no CNI plugin is called), but for the one
    # of the device injector's network devices: a bridge network.
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["$D/cni/bin"]
      conf_dir = "$D/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
EOF
}

cri() { timeout 90 "$CRICTL" --config "$D/crictl.yaml" "$@"; }
ctr() { timeout 90 "$CTRD_BIN/ctr" --address "$D/containerd.sock" "$@"; }

cri_ready() { [ -S "$NRI_SOCK" ] && cri info >/dev/null 2>&1; }

# ctrd_start : starts containerd in the background, marks the start in its
# log, and waits (bounded) until the CRI answers.
ctrd_start() {
  CTRD_STARTS=$((CTRD_STARTS + 1))
  printf '==== nri-e2e: containerd start %d ====\n' "$CTRD_STARTS" >>"$CTRD_LOG"
  # Started from a subshell that exits at once: containerd is re-parented to
  # the subreaper, which records how it ends (and bash does not report a
  # killed job on the terminal).
  CTRD_PID=$(
    "$CTRD_BIN/containerd" --config "$D/config.toml" >>"$CTRD_LOG" 2>&1 </dev/null &
    echo $!
  )
  echo "$CTRD_PID" >"$D/containerd.pid"
  if ! wait_for 60 cri_ready; then
    echo "containerd did not answer within 60s (pid $CTRD_PID)" >&2
    return 1
  fi
}

# ctrd_segment : containerd's log since its last start.
ctrd_segment() {
  awk -v m="==== nri-e2e: containerd start $CTRD_STARTS ====" 'f; $0 == m { f = 1 }' "$CTRD_LOG"
}

# registration PLUGIN : "KIND PID" of the last registration of plugin
# NN-name in containerd's log since its last start (KIND: external or
# pre-connected), empty if none.
registration() {
  ctrd_segment | sed -n 's/.*plugin \\"\([a-z-]*\):'"$1"'\[\([0-9]*\)\]\\" registered as.*/\1 \2/p' | tail -n 1
}

registered() { [ -n "$(registration "$1")" ]; }

# launched_pid NN-name : PID of the plugin containerd launched from plugin_path.
launched_pid() {
  local p
  for p in $(pgrep -P "$CTRD_PID" 2>/dev/null); do
    if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$D/nri/plugins/$1" ]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# ----------------------------------------------------------------- crictl ----

# ctr_json ID : crictl inspect of a container (spec in .info.runtimeSpec).
ctr_json() { cri inspect "$1" 2>/dev/null; }

# in_ctr ID SCRIPT : runs SCRIPT with sh in the container (ExecSync), prints
# its output; the script should print what it found rather than fail.
in_ctr() { cri exec -s --timeout 20 "$1" /bin/sh -c "$2" 2>&1; }

# pod_config FILE NAME ANNOTATIONS_JSON : a host-network pod (no CNI) in its
# own cgroup parent, without a hostname.
pod_config() {
  jq -n --arg name "$2" --arg uid "uid-$2-$RUN_ID" --arg logs "$D/logs/$2" \
    --arg cg "$CGROUP_PARENT" --argjson ann "$3" '{
    metadata: {name: $name, namespace: "nri-e2e", uid: $uid, attempt: 0},
    log_directory: $logs,
    annotations: $ann,
    linux: {cgroup_parent: $cg,
            security_context: {namespace_options: {network: 2}}}
  }' >"$1"
}

# ctr_config FILE NAME : a container running a shell loop that ends on
# SIGTERM, in a PID namespace of its own (so /proc/1 in it is that shell).
# The shell first writes its ulimits to /tmp/init-ulimits.
CTR_SCRIPT='echo "ulimit -n=$(ulimit -n) -Hn=$(ulimit -Hn) -l=$(ulimit -l) -Hl=$(ulimit -Hl)" >/tmp/init-ulimits
trap "exit 0" TERM
while :; do sleep 1; done'
ctr_config() {
  jq -n --arg name "$2" --arg image "$BUSYBOX_IMAGE" --arg script "$CTR_SCRIPT" '{
    metadata: {name: $name},
    image: {image: $image},
    command: ["/bin/sh", "-c", $script],
    log_path: ($name + ".log"),
    linux: {security_context: {namespace_options: {network: 2, pid: 1}}}
  }' >"$1"
}

# run_pod NAME ANNOTATIONS_JSON : starts a pod, prints its id.
run_pod() {
  pod_config "$D/specs/pod-$1.json" "$1" "$2"
  cri runp "$D/specs/pod-$1.json"
}

# start_ctr POD_NAME POD_ID NAME : creates and starts a container, prints its
# id; on failure prints crictl's error on stderr and returns 1.
start_ctr() {
  local id
  ctr_config "$D/specs/ctr-$3.json" "$3"
  id=$(cri create "$2" "$D/specs/ctr-$3.json" "$D/specs/pod-$1.json") || return 1
  cri start "$id" >/dev/null || return 1
  echo "$id"
}

ctr_state() { ctr_json "$1" | jq -r '.status.state // empty'; }

# ---------------------------------------------------------------- cgroups ----

cgroup_v2() { [ -f /sys/fs/cgroup/cgroup.controllers ]; }

# cg_read ID CONTROLLER V1FILE V2FILE : a value of the container's cgroup.
cg_read() {
  local path
  path=$(ctr_json "$1" | jq -r '.info.runtimeSpec.linux.cgroupsPath // empty')
  [ -n "$path" ] || return 1
  if cgroup_v2; then
    cat "/sys/fs/cgroup/$path/$4" 2>/dev/null
  else
    cat "/sys/fs/cgroup/$2/$path/$3" 2>/dev/null
  fi
}

mem_limit() {
  local v
  v=$(cg_read "$1" memory memory.limit_in_bytes memory.max) || return 1
  echo "$v"
}

cpuset_cpus() { cg_read "$1" cpuset cpuset.cpus cpuset.cpus; }
