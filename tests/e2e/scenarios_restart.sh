# shellcheck shell=bash
# End-to-end scenarios, second half: containerd restarts (killed and
# graceful), stop and remove, plugins stopping, and containerd's log.
# Sourced by suite.sh after scenarios.sh; uses lib.sh's helpers.

# ------------------------------------------------------------ restarts ----

declare -A INIT_PID=() # running containers: their init PIDs before a restart

running_containers() { cri ps -q --state running 2>/dev/null; }

record_containers() {
  INIT_PID=()
  local id
  for id in $(running_containers); do
    INIT_PID[$id]=$(ctr_json "$id" | jq -r '.info.pid')
  done
  ev "running containers: ${#INIT_PID[@]} ($(for id in "${!INIT_PID[@]}"; do printf '%s:%s ' "${id:0:12}" "${INIT_PID[$id]}"; done))"
}

# expect_containers_untouched : the containers recorded still run, with the
# same init processes, and answer in them.
expect_containers_untouched() {
  local id
  for id in "${!INIT_PID[@]}"; do
    if alive "${INIT_PID[$id]}"; then
      ev "ok: ${id:0:12}'s init (pid ${INIT_PID[$id]}) still runs"
    else
      bad "${id:0:12}'s init (pid ${INIT_PID[$id]}) is gone"
    fi
  done
  [ "${#INIT_PID[@]}" -gt 0 ] || bad "no running container was recorded"
}

expect_containers_still_running() {
  local id
  for id in "${!INIT_PID[@]}"; do
    local state pid out
    state=$(ctr_state "$id")
    pid=$(ctr_json "$id" | jq -r '.info.pid')
    out=$(in_ctr "$id" 'echo alive')
    if [ "$state" = CONTAINER_RUNNING ] && [ "$pid" = "${INIT_PID[$id]}" ] && [ "$out" = alive ]; then
      ev "ok: ${id:0:12} is running, same init pid $pid, answers exec"
    else
      bad "${id:0:12}: state $state, init pid $pid (was ${INIT_PID[$id]}), exec said '$out'"
    fi
  done
}

declare -A LOG_MARK=() # plugin log line counts before a stop of containerd
mark_plugin_logs() {
  LOG_MARK=()
  local name
  for name in "${RECONNECTING[@]}" "${PLAIN[@]}" logger; do
    LOG_MARK[$name]=$(wc -l <"$(plugin_log "$name")" 2>/dev/null || echo 0)
  done
}
log_since_mark() { tail -n +"$((${LOG_MARK[$1]:-0} + 1))" "$(plugin_log "$1")" 2>/dev/null; }

# expect_runtime_gone_outcomes : after containerd went away, external plugins
# without -reconnect exit non-zero (for systemd or Kubernetes to restart
# them), launched ones exit 0 with a clear INFO line, reconnecting ones stay.
expect_runtime_gone_outcomes() {
  local name
  for name in "${PLAIN[@]}"; do
    if wait_for 20 gone "${PID[$name]}"; then
      local st
      reap "${PID[$name]}"
      st=${CHILD_STATUS[${PID[$name]}]}
      if [ "$st" -ne 0 ]; then
        ev "ok: $name (external, no -reconnect) exited with status $st"
      else
        bad "$name (external, no -reconnect) exited with status 0: a supervisor would not restart it"
      fi
      log_since_mark "$name" | cut -c1-200 | ev_lines "  $name: "
    else
      bad "$name (external, no -reconnect) still runs 20s after the runtime went away"
    fi
  done
  for name in "${LAUNCHED[@]}"; do
    local pid=${LPID[$name]:-}
    [ -n "$pid" ] || { bad "no pid recorded for launched $name"; continue; }
    if ! wait_for 20 gone "$pid"; then
      bad "launched $name (pid $pid) still runs 20s after the runtime went away"
      continue
    fi
    local st=""
    wait_for 5 reaped "$pid"
    st=$(reaped_status "$pid")
    if [ -z "$st" ]; then
      bad "launched $name (pid $pid) ended, but not as an orphan of containerd: its exit status is unknown"
    elif [ "$st" = "exited 0" ]; then
      ev "ok: launched $name (pid $pid) $st"
    else
      bad "launched $name (pid $pid) $st; a launched plugin whose runtime went away should exit 0"
    fi
  done
  local since
  since=$(log_since_mark logger)
  ev "logger's log since the stop:"
  cut -c1-200 <<<"$since" | ev_lines "  | "
  expect_match "the launched logger says the runtime closed the connection, at INFO" "$since" " INFO .*runtime closed the connection"
  expect_no_match "the launched logger logged no error or warning when the runtime went away" "$since" " (ERROR|WARN) "
  expect_no_match "no doubled 'connection closed: connection closed'" "$since" "connection closed: connection closed"
  for name in "${RECONNECTING[@]}"; do
    if alive "${PID[$name]}"; then
      ev "ok: $name (pid ${PID[$name]}, -reconnect) keeps running"
    else
      reap "${PID[$name]}"
      bad "$name (pid ${PID[$name]}, -reconnect) exited with status ${CHILD_STATUS[${PID[$name]}]}"
    fi
  done
}

# expect_plugins_back : after containerd came back, every plugin is back:
# reconnecting ones by themselves (same PID), launched ones relaunched,
# the others restarted here as a supervisor would.
expect_plugins_back() {
  local name
  for name in "${RECONNECTING[@]}"; do
    expect_registered "$name" external "${PID[$name]}"
  done
  # Re-synchronized: the template's new Synchronize lists every running container.
  local tlog since
  tlog=$(plugin_log template)
  if wait_for 20 eval 'log_since_mark template | grep -q "Synchronize: "'; then
    since=$(log_since_mark template)
    ev "template: $(grep -m1 'Synchronize: ' <<<"$since" | cut -c1-200)"
    local id
    for id in $(running_containers); do
      expect_match "template re-synchronized with ${id:0:12}" "$since" "container .*\($id\)"
    done
  else
    bad "template logged no new Synchronize within 20s"
  fi
  for name in "${LAUNCHED[@]}"; do
    expect_registered "$name" pre-connected "" || continue
    expect_launched "$name" "${LPID[$name]:-}"
  done
  # External plugins without -reconnect: restarted as a supervisor would.
  for name in "${PLAIN[@]}"; do
    if alive "${PID[$name]}"; then
      bad "$name is still running"
      continue
    fi
    start_external "$name"
    expect_registered "$name" external "${PID[$name]}"
  done
}

check_kill_containerd() {
  begin_check "containerd killed with SIGKILL: containers untouched; plugins end as their kind should"
  record_containers
  mark_plugin_logs
  kill -KILL "$CTRD_PID"
  if wait_for 10 gone "$CTRD_PID"; then
    wait_for 5 reaped "$CTRD_PID"
    ev "containerd (pid $CTRD_PID): $(reaped_status "$CTRD_PID")"
  else
    bad "containerd (pid $CTRD_PID) still runs after SIGKILL"
  fi
  expect_runtime_gone_outcomes
  expect_containers_untouched
  end_check
}

# check_restart TITLE : starts containerd again; the plugins must come back
# and the containers still run.
check_restart() {
  begin_check "$1"
  if ! ctrd_start; then
    bad "containerd did not start again"
    end_check
    return
  fi
  ev "containerd pid $CTRD_PID"
  expect_plugins_back
  expect_containers_still_running
  end_check
}

check_restart_after_kill() {
  check_restart "containerd restarted after SIGKILL: reconnecting plugins re-register with the same pid and re-synchronize, launched ones are relaunched"
}

check_new_container_adjusted() {
  local name=$1 id
  begin_check "after the restart, a new container ($name) gets every plugin's adjustments"
  if ! id=$(start_ctr e2e-adjust "$POD_ADJUST" "$name" 2>"$D/err"); then
    bad "container $name did not start: $(cat "$D/err")"
    end_check
    return
  fi
  ev "container $name: $id"
  verify_device "$id"
  verify_mounts "$id" "$name"
  verify_rlimits "$id"
  verify_env "$id" "${LPID[logger]:-?}"
  verify_hook "$id"
  verify_memory_default "$id"
  end_check
}

check_graceful_stop() {
  begin_check "containerd stopped gracefully (SIGTERM): containers untouched; plugins end as their kind should"
  record_containers
  mark_plugin_logs
  kill -TERM "$CTRD_PID"
  if wait_for 30 gone "$CTRD_PID"; then
    wait_for 5 reaped "$CTRD_PID"
    expect_eq "containerd (pid $CTRD_PID) ends" "$(reaped_status "$CTRD_PID")" "exited 0"
  else
    bad "containerd (pid $CTRD_PID) still runs 30s after SIGTERM"
  fi
  expect_runtime_gone_outcomes
  expect_containers_untouched
  end_check
}

check_restart_after_graceful_stop() {
  check_restart "containerd started again after a graceful stop: plugins back, containers untouched"
}

# ----------------------------------------------------- stop and remove ----

# stop_remove_reaches_plugins POD_NAME POD_ID : stops and removes each
# container of the pod, then the pod if POD_EVENTS is yes, and checks that the
# template, the launched logger and the poststop hook saw it.
stop_remove_reaches_plugins() {
  local pod_name=$1 pod=$2 pod_events=$3 ids id
  local tlog llog logger_lines
  tlog=$(plugin_log template)
  llog=$(plugin_log logger)
  logger_lines=$(wc -l <"$llog")
  ids=$(cri ps -a -q --pod "$pod")
  [ -n "$ids" ] || bad "no container in pod $pod_name"
  for id in $ids; do
    local name
    name=$(ctr_json "$id" | jq -r '.status.metadata.name')
    cri stop --timeout 10 "$id" >/dev/null 2>"$D/err" || bad "crictl stop $name: $(cat "$D/err")"
    cri rm "$id" >/dev/null 2>"$D/err" || bad "crictl rm $name: $(cat "$D/err")"
    if wait_for 10 log_has "$tlog" "RemoveContainer $pod_name/$name$"; then
      expect_match "template saw StopContainer of $name" "$(cat "$tlog")" "INFO +template: StopContainer $pod_name/$name$"
      expect_match "template saw RemoveContainer of $name" "$(cat "$tlog")" "INFO +template: RemoveContainer $pod_name/$name$"
    else
      bad "template did not see RemoveContainer $pod_name/$name within 10s"
    fi
    expect_match "the poststop hook ran for $name" "$(cat "$D/hooks.log" 2>/dev/null)" "^poststop $id$"
  done
  cri stopp "$pod" >/dev/null 2>"$D/err" || bad "crictl stopp $pod_name: $(cat "$D/err")"
  cri rmp "$pod" >/dev/null 2>"$D/err" || bad "crictl rmp $pod_name: $(cat "$D/err")"
  local events=(StopContainer RemoveContainer)
  if [ "$pod_events" = yes ]; then
    events+=(StopPodSandbox RemovePodSandbox)
    if wait_for 10 log_has "$tlog" "RemovePodSandbox nri-e2e/$pod_name$"; then
      expect_match "template saw StopPodSandbox" "$(cat "$tlog")" "INFO +template: StopPodSandbox nri-e2e/$pod_name$"
      expect_match "template saw RemovePodSandbox" "$(cat "$tlog")" "INFO +template: RemovePodSandbox nri-e2e/$pod_name$"
    else
      bad "template did not see RemovePodSandbox nri-e2e/$pod_name within 10s"
    fi
  fi
  local since event
  since=$(tail -n +"$((logger_lines + 1))" "$llog")
  for event in "${events[@]}"; do
    expect_match "the launched logger saw $event" "$since" "INFO +logger: $event$"
  done
}

check_stop_and_remove() {
  begin_check "stopping and removing containers and pods reaches the plugins (template and logger logs, poststop hook)"
  # A pod made since containerd's last start: containerd tells the plugins
  # about every step of its end.
  local pod id
  if pod=$(run_pod e2e-lifecycle "$ADJUST_ANNOTATIONS" 2>"$D/err") &&
    id=$(start_ctr e2e-lifecycle "$pod" c0 2>"$D/err"); then
    ev "pod e2e-lifecycle $pod, container c0 $id"
    stop_remove_reaches_plugins e2e-lifecycle "$pod" yes
  else
    bad "cannot run pod e2e-lifecycle: $(cat "$D/err")"
  fi
  # Containers made before containerd's restarts: their end reaches the
  # plugins too. (Their pods' does not: containerd 2.2 and 2.4 restore the NRI
  # state of containers after a restart, not of pods, and send no
  # StopPodSandbox or RemovePodSandbox for a pod they did not see start.)
  stop_remove_reaches_plugins e2e-adjust "$POD_ADJUST" no
  local p
  for p in "$POD_REBALANCE" "$POD_FAILING"; do
    [ -n "$p" ] || continue
    cri stopp "$p" >/dev/null 2>&1
    cri rmp "$p" >/dev/null 2>&1 || bad "crictl rmp $p failed"
  done
  expect_eq "pods left" "$(cri pods -q | grep -c .)" 0
  end_check
}

check_external_plugins_stop_on_sigterm() {
  begin_check "external plugins stop on SIGTERM with exit status 0 (as systemd stops them)"
  local name
  for name in "${RECONNECTING[@]}" "${PLAIN[@]}"; do
    local pid=${PID[$name]}
    if ! alive "$pid"; then
      bad "$name (pid $pid) is not running"
      continue
    fi
    kill -TERM "$pid"
    if wait_for 10 gone "$pid"; then
      reap "$pid"
      expect_eq "$name (pid $pid) exit status" "${CHILD_STATUS[$pid]}" 0
    else
      bad "$name (pid $pid) still runs 10s after SIGTERM"
      kill -KILL "$pid" 2>/dev/null
    fi
    unset "PID[$name]"
  done
  end_check
}

# ------------------------------------------------------- containerd log ----

# nri_lines : containerd's log lines about NRI, its plugins and their
# synchronization. Paths under the temporary directory are shown as DIR and
# the pods' namespace nri-e2e as e2e, so that neither counts as NRI.
nri_lines() {
  sed -e "s#$(dirname "$D")[^ \"]*#DIR#g" -e 's/nri-e2e/e2e/g' "$CTRD_LOG" |
    grep -E 'NRI|nri|plugin \\"[^ ]*\\"|plugin [0-9]{2}-|closing plugin|[Ss]ynchroniz|StateChange|==== e2e' |
    grep -v -E 'msg="(loading|skip loading) plugin"|Image(Create|Update) event'
}

# nri_problem_lines : NRI's warnings and errors, minus the deliberate
# failures (of the containers named reject-*).
nri_problem_lines() {
  nri_lines | grep -E 'level=(warning|error|fatal|panic)' | grep -v -E 'name:\\"reject-[a-z]+\\"'
}

check_log_no_nri_error() {
  begin_check "containerd's log holds no NRI error or warning (other than the deliberate failures)"
  local nri_problems
  nri_problems=$(nri_lines | grep -c -E 'level=(warning|error|fatal|panic)')
  ev "containerd log: $(wc -l <"$CTRD_LOG") lines, $(grep -E -c 'level=(warning|error|fatal|panic)' "$CTRD_LOG") warnings and errors, $nri_problems of them about NRI"
  expect_match "the deliberate failures are logged" "$(nri_lines)" "level=error.*$BAD_TYPE"
  nri_lines | grep -E 'level=(warning|error|fatal|panic)' | grep -E 'name:\\"reject-[a-z]+\\"' |
    sed 's/^time="[^"]*" //' | cut -c1-240 | ev_lines "deliberate: "
  expect_no_match "no other NRI warning or error" "$(nri_problem_lines)" "."
  end_check
}

check_log_no_deprecation() {
  begin_check "no NRI deprecation: nothing in containerd's log, nothing in 'ctr deprecations list'"
  expect_no_match "no deprecated-interface warning in the log" "$(cat "$CTRD_LOG")" \
    "deprecated (StateChange|interface)|nri-plugin-interface|StateChange instead"
  local deps
  deps=$(ctr deprecations list 2>&1)
  ev_lines "ctr deprecations list: " <<<"$(cut -c1-160 <<<"$deps")"
  expect_no_match "no NRI entry in 'ctr deprecations list'" "$deps" "nri"
  end_check
}

check_log_nri_version() {
  begin_check "plugins register with a known NRI version (no 'NRI version unknown')"
  local regs
  regs=$(grep -F 'registered as' "$CTRD_LOG")
  ev_lines "containerd: " <<<"$(sed -n 's/.*msg="\(.*\)"$/\1/p' <<<"$regs" | sort -u | cut -c1-160)"
  [ -n "$regs" ] || bad "no registration in the log"
  expect_no_match "no registration with an unknown NRI version" "$regs" "NRI version unknown"
  if grep -q -F 'with NRI version' <<<"$regs"; then
    ev "containerd $VERSION logs the plugin's NRI version at registration"
  else
    ev "containerd $VERSION (NRI $NRI_VERSION) does not log a plugin's NRI version at registration"
  fi
  end_check
}

# Not a check: containerd's NRI log lines, for the record.
check_nri_log_sample() {
  printf '\n--- [containerd %s] containerd'"'"'s NRI log lines (first 80)\n' "$VERSION"
  nri_lines | sed 's/^time="[^"]*" //' | awk 'NR <= 80' | cut -c1-220 | sed 's/^/    /'
}
