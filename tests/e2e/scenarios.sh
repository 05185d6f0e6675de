# shellcheck shell=bash
# The end-to-end scenarios, one function per check (sourced by suite.sh,
# which sets the stage: $D, the plugins, the pods' annotations).
#
# Each check prints what it looked at (containerd's log, crictl inspect,
# what a command in the container printed, the cgroup, the plugins' logs)
# and PASS or FAIL.

# ------------------------------------------------------------- startup ----

check_containerd_starts() {
  begin_check "containerd starts with NRI on a private socket; busybox and pause images imported"
  # The reconnecting plugins start first: they must wait for the socket.
  local name
  for name in "${RECONNECTING[@]}"; do
    start_external "$name" reconnect
  done
  sleep 1
  for name in "${RECONNECTING[@]}"; do
    if alive "${PID[$name]}"; then
      ev "ok: $name (pid ${PID[$name]}) is up before containerd, waiting for $NRI_SOCK"
    else
      bad "$name exited before containerd started: $(tail -n 3 "$(plugin_log "$name")" "$D/plugins/$name.out" 2>/dev/null)"
    fi
  done
  if ! ctrd_start; then
    bad "containerd did not start"
    end_check
    return 1
  fi
  ev "containerd pid $CTRD_PID: $(cri version 2>&1 | tr '\n' ' ')"
  ev "NRI socket: $(ls -l "$NRI_SOCK" 2>&1)"
  import_image busybox "$BUSYBOX_IMAGE" '["/bin/sh"]'
  import_image pause "$PAUSE_IMAGE" '["/bin/sleep", "2147483647"]'
  local images
  images=$(cri images 2>&1)
  expect_match "crictl images lists the busybox image" "$images" "nri-e2e-busybox"
  expect_match "crictl images lists the pause image" "$images" "nri-e2e-pause"
  end_check
  [ "$CHECK_BAD" -eq 0 ]
}

# import_image SHORT REF CMD_JSON : makes the image and imports it.
import_image() {
  if ! bash "$HERE/mkimage.sh" "$D/$1.tar" "$2" "$3" >"$D/mkimage-$1.log" 2>&1; then
    bad "cannot make image $2: $(cat "$D/mkimage-$1.log")"
  elif ctr -n k8s.io images import "$D/$1.tar" >"$D/import-$1.log" 2>&1; then
    ev "ok: imported $2 (cmd $3)"
  else
    bad "ctr images import $2 failed: $(tail -n 3 "$D/import-$1.log")"
  fi
}

# expect_registered NAME KIND WANT_PID : containerd's log (since its last
# start) shows NN-name registered as KIND with WANT_PID (any PID if empty).
expect_registered() {
  local name=$1 kind=$2 want=$3 full="${IDX[$1]}-$1" reg
  if ! wait_for 40 registered "$full"; then
    bad "$full did not register within 40s (its log: $(tail -n 2 "$(plugin_log "$name")" 2>/dev/null | tr '\n' ' '))"
    return 1
  fi
  reg=$(registration "$full")
  ev "containerd: $(ctrd_segment | grep -F "${full}[" | grep -F 'registered as' | tail -n 1 | cut -c1-220)"
  expect_eq "$full registers as" "${reg% *}" "$kind"
  if [ -n "$want" ]; then
    expect_eq "$full registers with pid" "${reg#* }" "$want"
  fi
  REG_PID=${reg#* }
}

check_external_reconnecting() {
  begin_check "external plugins with -reconnect, started before containerd, register once it listens (${RECONNECTING[*]})"
  local name
  for name in "${RECONNECTING[@]}"; do
    expect_registered "$name" external "${PID[$name]}"
  done
  end_check
}

check_external_plain() {
  begin_check "external plugins without -reconnect register (${PLAIN[*]})"
  local name
  for name in "${PLAIN[@]}"; do
    start_external "$name"
    expect_registered "$name" external "${PID[$name]}"
  done
  end_check
}

declare -A LPID=() # launched plugins: their PIDs, as containerd launched them

# expect_launched NAME OLD_PID : containerd runs NN-name from plugin_path as
# its child (a new process if OLD_PID is given); records its pid in LPID.
expect_launched() {
  local name=$1 old=$2 full="${IDX[$1]}-$1" pid
  if ! pid=$(launched_pid "$full"); then
    bad "no child of containerd (pid $CTRD_PID) runs $D/nri/plugins/$full"
    return 1
  fi
  ev "ok: containerd (pid $CTRD_PID) runs $full as its child, pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null), environment $(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep '^NRI_' | tr '\n' ' '))"
  if [ -n "$old" ]; then
    if [ "$pid" != "$old" ]; then
      ev "ok: $name relaunched: pid $old -> $pid"
    else
      bad "$name: still pid $old, not relaunched"
    fi
  fi
  LPID[$name]=$pid
}

check_launched() {
  begin_check "pre-registered plugins in plugin_path with a conf.d file are launched by containerd (${LAUNCHED[*]})"
  ev "plugin_path: $(cd "$D/nri/plugins" && echo *); conf.d: $(cd "$D/nri/conf.d" && echo *)"
  local name
  for name in "${LAUNCHED[@]}"; do
    # containerd names itself as the peer of the socket pair it made: the
    # plugin's own pid comes from the process tree.
    expect_registered "$name" pre-connected "" || continue
    expect_launched "$name" ""
  done
  # The logger's only input is what containerd read from conf.d: its log
  # file is the one named there.
  local log
  log=$(plugin_log logger)
  if wait_for 10 test -s "$log"; then
    ev "ok: the logger writes to $log, named in its conf.d file:"
    head -n 3 "$log" | cut -c1-200 | ev_lines "  | "
  else
    bad "the logger did not create $log (named in its conf.d file)"
  fi
  end_check
}

# --------------------------------------------------------- adjustments ----

C0=""
POD_ADJUST=""

check_pod_and_container_start() {
  begin_check "a pod whose annotations ask every plugin for something runs a container (c0)"
  if ! POD_ADJUST=$(run_pod e2e-adjust "$ADJUST_ANNOTATIONS" 2>"$D/err"); then
    bad "crictl runp failed: $(cat "$D/err")"
    end_check
    return
  fi
  ev "pod e2e-adjust: $POD_ADJUST"
  if ! C0=$(start_ctr e2e-adjust "$POD_ADJUST" c0 2>"$D/err"); then
    bad "container c0 did not start: $(cat "$D/err")"
    C0=""
    end_check
    return
  fi
  ev "container c0: $C0"
  expect_eq "c0 state" "$(ctr_state "$C0")" CONTAINER_RUNNING
  end_check
}

# spec ID JQ : a value from the container's OCI spec (crictl inspect).
spec() { ctr_json "$1" | jq -c "$2" 2>/dev/null; }

verify_device() {
  local id=$1 out
  ev "spec linux.devices: $(spec "$id" '.info.runtimeSpec.linux.devices[]? | select(.path == "/dev/nri-null")')"
  expect_eq "device in the spec (type major:minor mode)" \
    "$(spec "$id" '.info.runtimeSpec.linux.devices[]? | select(.path == "/dev/nri-null") | "\(.type) \(.major):\(.minor) \(.fileMode)"')" '"c 1:3 438"'
  expect_eq "device cgroup rule in the spec" \
    "$(spec "$id" '[.info.runtimeSpec.linux.resources.devices[]? | select(.allow and .type == "c" and .major == 1 and .minor == 3)] | length > 0')" true
  out=$(in_ctr "$id" 'stat -c "node=%F %t:%T %a" /dev/nri-null; if echo probe >/dev/nri-null; then echo write=ok; else echo write=refused; fi; echo "read=$(head -c 16 /dev/nri-null | wc -c)"')
  ev "in the container:"
  ev_lines "  | " <<<"$out"
  expect_match "the node exists in the container" "$out" "^node=character special file 1:3 666$"
  expect_match "the device takes writes" "$out" "^write=ok$"
  expect_match "reading it gives end of file, as /dev/null does" "$out" "^read=0$"
}

check_devices() {
  begin_check "device-injector: a device node from the pod's annotation (OCI spec, and usable in the container)"
  if [ -z "$1" ]; then bad "no container"; else verify_device "$1"; fi
  end_check
}

verify_mounts() {
  local id=$1 name=$2 out
  ev "spec mounts: $(spec "$id" '[.info.runtimeSpec.mounts[] | select(.destination | startswith("/mnt/nri"))]')"
  expect_eq "read-only mount in the spec" \
    "$(spec "$id" '.info.runtimeSpec.mounts[] | select(.destination == "/mnt/nri-ro") | [.source, (.options | index("ro") != null)]')" \
    "[\"$D/share/ro\",true]"
  expect_eq "read-write mount in the spec" \
    "$(spec "$id" '.info.runtimeSpec.mounts[] | select(.destination == "/mnt/nri-rw") | [.source, (.options | index("rw") != null)]')" \
    "[\"$D/share/rw\",true]"
  out=$(in_ctr "$id" "
    grep -E ' /mnt/nri-r[ow] ' /proc/mounts | awk '{ print \"mount=\" \$2, substr(\$4, 1, 2) }'
    echo \"content=\$(cat /mnt/nri-ro/hello)\"
    if touch /mnt/nri-ro/probe 2>/dev/null; then echo ro-write=allowed; else echo ro-write=refused; fi
    if echo from-$name >/mnt/nri-rw/$name; then echo rw-write=ok; else echo rw-write=refused; fi")
  ev "in the container:"
  ev_lines "  | " <<<"$out"
  expect_match "/mnt/nri-ro is mounted read-only" "$out" "^mount=/mnt/nri-ro ro$"
  expect_match "/mnt/nri-rw is mounted read-write" "$out" "^mount=/mnt/nri-rw rw$"
  expect_match "the host's file is visible" "$out" "^content=hello from the host$"
  expect_match "writing to the read-only mount fails" "$out" "^ro-write=refused$"
  expect_match "writing to the read-write mount works" "$out" "^rw-write=ok$"
  expect_eq "the host sees what the container wrote" "$(cat "$D/share/rw/$name" 2>&1)" "from-$name"
}

check_mounts() {
  begin_check "device-injector: bind mounts from the pod's annotation, read-only where asked (OCI spec, and in the container)"
  if [ -z "$1" ]; then bad "no container"; else verify_mounts "$1" c0; fi
  end_check
}

verify_rlimits() {
  local id=$1 out
  ev "spec process.rlimits: $(spec "$id" '.info.runtimeSpec.process.rlimits')"
  expect_eq "RLIMIT_NOFILE in the spec (soft hard)" \
    "$(spec "$id" '.info.runtimeSpec.process.rlimits[]? | select(.type == "RLIMIT_NOFILE") | "\(.soft) \(.hard)"')" '"1024 4096"'
  expect_eq "RLIMIT_MEMLOCK in the spec (soft hard)" \
    "$(spec "$id" '.info.runtimeSpec.process.rlimits[]? | select(.type == "RLIMIT_MEMLOCK") | "\(.soft) \(.hard)"')" '"524288 1048576"'
  # The container's own process is what the adjustment is for: its shell's
  # ulimit (written when it started) and /proc/1/limits. A process exec'd
  # later gets its limits from the runtime's exec path: shown, not judged.
  out=$(in_ctr "$id" 'sed "s/^/init: /" /tmp/init-ulimits; grep -E "^Max (open files|locked memory)" /proc/1/limits; echo "exec: ulimit -n=$(ulimit -n) -Hn=$(ulimit -Hn) -l=$(ulimit -l) -Hl=$(ulimit -Hl)"')
  ev "in the container:"
  ev_lines "  | " <<<"$out"
  expect_match "ulimit of the container's shell (memlock in KiB)" "$out" "^init: ulimit -n=1024 -Hn=4096 -l=512 -Hl=1024$"
  expect_match "the container's init has the open files limit" "$out" "^Max open files +1024 +4096 +files"
  expect_match "the container's init has the locked memory limit" "$out" "^Max locked memory +524288 +1048576 +bytes"
}

check_rlimits() {
  begin_check "ulimit-adjuster: rlimits from the pod's annotation (OCI spec, and ulimit in the container)"
  if [ -z "$1" ]; then bad "no container"; else verify_rlimits "$1"; fi
  end_check
}

verify_env() {
  local id=$1 logger_pid=$2 out
  local want="logger-pid-$logger_pid"
  expect_eq "NRI_LOGGER in the spec's env" \
    "$(spec "$id" '.info.runtimeSpec.process.env[]? | select(startswith("NRI_LOGGER="))')" "\"NRI_LOGGER=$want\""
  expect_eq "annotation logger.nri.io/seen-by in the spec" \
    "$(spec "$id" '.info.runtimeSpec.annotations["logger.nri.io/seen-by"]')" "\"$want\""
  out=$(in_ctr "$id" 'echo "exec env: NRI_LOGGER=$NRI_LOGGER"; tr "\0" "\n" </proc/1/environ | grep "^NRI_LOGGER=" | sed "s/^/init env: /"')
  ev "in the container:"
  ev_lines "  | " <<<"$out"
  expect_match "the container's init has the variable" "$out" "^init env: NRI_LOGGER=$want$"
  expect_match "a process run in the container has it" "$out" "^exec env: NRI_LOGGER=$want$"
}

check_env_and_annotation() {
  begin_check "logger (launched): env variable and annotation stamped with its pid (OCI spec, and env in the container)"
  if [ -z "$1" ]; then bad "no container"; else verify_env "$1" "${LPID[logger]:-?}"; fi
  end_check
}

verify_hook() {
  local id=$1 out
  ev "spec hooks: $(spec "$id" '.info.runtimeSpec.hooks')"
  expect_eq "createRuntime hook in the spec" \
    "$(spec "$id" '.info.runtimeSpec.hooks.createRuntime[]? | select(.path == "'"$D"'/bin/e2e-hook") | .args')" \
    '["e2e-hook","createRuntime"]'
  expect_eq "poststop hook in the spec" \
    "$(spec "$id" '.info.runtimeSpec.hooks.poststop[]? | select(.path == "'"$D"'/bin/e2e-hook") | .args')" \
    '["e2e-hook","poststop"]'
  out=$(in_ctr "$id" 'echo "hook left: $(cat /nri-hook-ran 2>&1)"')
  ev "in the container:"
  ev_lines "  | " <<<"$out"
  expect_match "the createRuntime hook ran for this container" "$out" "^hook left: createRuntime $id$"
  expect_match "the host's record of hook runs" "$(cat "$D/hooks.log" 2>/dev/null)" "^createRuntime $id$"
}

check_hooks() {
  begin_check "hook-injector: OCI hooks from a hooks.d file matched by annotation (OCI spec, and the hook ran for the container)"
  if [ -z "$1" ]; then bad "no container"; else verify_hook "$1"; fi
  end_check
}

verify_memory_default() {
  local id=$1 out
  expect_eq "memory limit in the spec" "$(spec "$id" '.info.runtimeSpec.linux.resources.memory.limit')" "$MEM_DEFAULT"
  expect_eq "memory limit in the container's cgroup" "$(mem_limit "$id")" "$MEM_DEFAULT"
  out=$(in_ctr "$id" 'echo "cgroup limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"')
  ev_lines "in the container: " <<<"$out"
  expect_match "the container sees its limit" "$out" "^cgroup limit: $MEM_DEFAULT$"
}

check_memory_default() {
  begin_check "memory-defaulter (launched, no conf.d file): memory limit from the pod's annotation (OCI spec, cgroup)"
  if [ -z "$1" ]; then bad "no container"; else verify_memory_default "$1"; fi
  end_check
}

# log_has FILE ERE : FILE has a line matching ERE.
log_has() { grep -E -q -e "$2" "$1" 2>/dev/null; }

check_update() {
  begin_check "crictl update reaches UpdateContainer in the plugins and changes the cgroup"
  if [ -z "$C0" ]; then bad "no container"; end_check; return; fi
  local before after
  before=$(mem_limit "$C0")
  local logger_lines
  logger_lines=$(wc -l <"$(plugin_log logger)")
  if ! cri update --memory "$MEM_UPDATED" "$C0" >"$D/err" 2>&1; then
    bad "crictl update failed: $(cat "$D/err")"
  fi
  after=$(mem_limit "$C0")
  ev "cgroup memory limit: before $before, after $after"
  expect_eq "memory limit in the cgroup after the update" "$after" "$MEM_UPDATED"
  if [ "$before" = "$after" ]; then bad "the cgroup value did not change"; fi
  local tlog
  tlog=$(plugin_log template)
  if wait_for 10 log_has "$tlog" "PostUpdateContainer e2e-adjust/c0"; then
    expect_match "template saw UpdateContainer" "$(cat "$tlog")" "INFO +template: UpdateContainer e2e-adjust/c0$"
    expect_match "template saw PostUpdateContainer" "$(cat "$tlog")" "INFO +template: PostUpdateContainer e2e-adjust/c0$"
  else
    bad "template's log has no PostUpdateContainer e2e-adjust/c0 within 10s"
  fi
  local since
  since=$(tail -n +"$((logger_lines + 1))" "$(plugin_log logger)")
  expect_match "logger saw UpdateContainer" "$since" "INFO +logger: UpdateContainer$"
  expect_match "with the requested memory limit" "$(sed -n '/INFO  *logger: UpdateContainer$/,$p' <<<"$since")" "value: $MEM_UPDATED"
  end_check
}

# ----------------------------------------------------- updates to others ----

cpuset_is() { [ "$(cpuset_cpus "$1")" = "$2" ]; }
cpuset_differs() { ! cpuset_is "$@"; }

POD_REBALANCE=""
R1=""
R2=""

check_rebalancer() {
  begin_check "cpu-rebalancer: updates to other containers reach their cgroups (CreateContainer and StopContainer replies)"
  local online
  online=$(cat /sys/devices/system/cpu/online)
  ev "online CPUs: $online"
  if ! POD_REBALANCE=$(run_pod e2e-rebalance "$REBALANCE_ANNOTATIONS" 2>"$D/err"); then
    bad "crictl runp failed: $(cat "$D/err")"
    end_check
    return
  fi
  if ! R1=$(start_ctr e2e-rebalance "$POD_REBALANCE" r1 2>"$D/err"); then
    bad "r1 did not start: $(cat "$D/err")"
    end_check
    return
  fi
  local r1_alone r1_shared r2_shared r1_back
  r1_alone=$(cpuset_cpus "$R1")
  ev "r1 alone: cpuset.cpus $r1_alone"
  expect_eq "r1, alone, has every online CPU" "$r1_alone" "$online"
  if ! R2=$(start_ctr e2e-rebalance "$POD_REBALANCE" r2 2>"$D/err"); then
    bad "r2 did not start: $(cat "$D/err")"
    end_check
    return
  fi
  wait_for 10 cpuset_differs "$R1" "$r1_alone"
  r1_shared=$(cpuset_cpus "$R1")
  r2_shared=$(cpuset_cpus "$R2")
  ev "r1 and r2: cpuset.cpus $r1_shared and $r2_shared"
  if [ "$(nproc --all)" -lt 2 ]; then
    bad "this check needs at least 2 CPUs to see r1's cpuset change (have $(nproc --all))"
  elif [ "$r1_shared" = "$r1_alone" ]; then
    bad "r1's cpuset did not change when r2 came (the update to another container was not applied)"
  else
    ev "ok: r1's cpuset changed from $r1_alone to $r1_shared (an update returned with r2's CreateContainer)"
  fi
  if [ -n "$r1_shared" ] && [ "$r1_shared" = "$r2_shared" ]; then
    bad "r1 and r2 share the same CPUs $r1_shared"
  fi
  expect_match "cpu-rebalancer logged r1's new cpuset" "$(cat "$(plugin_log cpu-rebalancer)")" "r1.*cpuset $r1_shared$"
  if ! cri stop --timeout 10 "$R2" >"$D/err" 2>&1; then
    bad "crictl stop r2 failed: $(cat "$D/err")"
  fi
  wait_for 10 cpuset_is "$R1" "$online"
  r1_back=$(cpuset_cpus "$R1")
  ev "r1 after r2 stopped: cpuset.cpus $r1_back"
  expect_eq "r1 gets every CPU back (update returned with r2's StopContainer)" "$r1_back" "$online"
  end_check
}

# ------------------------------------------------------------- failure ----

POD_FAILING=""
GOOD=""

check_failing_plugin() {
  begin_check "a plugin failing a creation (bad annotation): container not created, crictl shows the plugin's reason, plugin stays registered"
  if ! POD_FAILING=$(run_pod e2e-failing "$FAILING_ANNOTATIONS" 2>"$D/err"); then
    bad "crictl runp failed: $(cat "$D/err")"
    end_check
    return
  fi
  local out
  if out=$(start_ctr e2e-failing "$POD_FAILING" reject-ulimit 2>&1); then
    bad "container reject-ulimit was created and started: $out"
  else
    ev "crictl create: $(cut -c1-400 <<<"$out")"
    expect_match "crictl shows the plugin's reason" "$out" "failed to parse type: .?\"$BAD_TYPE.?\""
  fi
  expect_eq "containers named reject-ulimit in the pod" "$(cri ps -a --pod "$POD_FAILING" --name '^reject-ulimit$' -q | grep -c .)" 0
  local full="${IDX[ulimit-adjuster]}-ulimit-adjuster"
  if alive "${PID[ulimit-adjuster]}"; then
    ev "ok: ulimit-adjuster (pid ${PID[ulimit-adjuster]}) still runs"
  else
    bad "ulimit-adjuster exited"
  fi
  expect_no_match "containerd did not close the plugin's connection" "$(ctrd_segment)" "(connection to plugin|closing plugin).*$full"
  if GOOD=$(start_ctr e2e-failing "$POD_FAILING" good 2>"$D/err"); then
    local limits
    limits=$(spec "$GOOD" '.info.runtimeSpec.process.rlimits[]? | select(.type == "RLIMIT_NOFILE") | "\(.soft) \(.hard)"')
    expect_eq "the next container of the pod gets its rlimit from the same plugin" "$limits" '"512 2048"'
  else
    bad "the next container did not start: $(cat "$D/err")"
  fi
  end_check
}

# ----------------------------------------------------------- validator ----

# expect_rejected POD_NAME POD_ID NAME WHAT ERE : creating container NAME
# fails with a message matching ERE, and leaves no container.
expect_rejected() {
  local out
  if out=$(start_ctr "$1" "$2" "$3" 2>&1); then
    bad "container $3 was created and started ($4 should have been refused)"
  else
    ev "crictl create $3: $(grep -o 'desc = .*' <<<"$out" | head -n 1 | cut -c1-300)"
    expect_match "crictl shows the validator's reason ($4)" "$out" "$5"
  fi
  expect_eq "containers named $3" "$(cri ps -a --pod "$2" --name "^$3\$" -q | grep -c .)" 0
}

check_validator() {
  begin_check "validator (external): adjustments its policy forbids and missing required plugins fail the creation with its reason; others pass"
  if [ ! -x "$EXAMPLES/validator" ]; then
    bad "no validator example in $EXAMPLES"
    end_check
    return
  fi
  ev "policy: $(tr '\n' ' ' <"$D/validator.yaml")"
  start_external validator
  if ! expect_registered validator external "${PID[validator]}"; then
    end_check
    return
  fi
  expect_rejected e2e-adjust "$POD_ADJUST" reject-hooks "OCI hooks from 40-hook-injector" \
    'plugin .?"40-hook-injector.?" attempted restricted OCI hook injection'
  expect_rejected e2e-failing "$POD_FAILING" reject-required "a required plugin that is not running" \
    'no-such-plugin'
  local id
  if id=$(start_ctr e2e-failing "$POD_FAILING" validated 2>"$D/err"); then
    ev "ok: container validated (no hooks, no requirement) created: $id"
  else
    bad "container validated was refused: $(cat "$D/err")"
  fi
  local pid=${PID[validator]}
  kill -TERM "$pid"
  if wait_for 10 gone "$pid"; then
    reap "$pid"
    expect_eq "validator (pid $pid) stops on SIGTERM with status" "${CHILD_STATUS[$pid]}" 0
  else
    bad "validator (pid $pid) still runs 10s after SIGTERM"
  fi
  unset "PID[validator]"
  end_check
}
