#!/usr/bin/env bash
# A local 3-node RabbitMQ cluster from Debian's `rabbitmq-server` package, for msgkit's failover
# tests. No Docker, no systemd: each node is its own Erlang VM, started by PID.
#
#   scripts/brokers/rabbitmq-cluster.sh install|start|stop|status|restart
#   scripts/brokers/rabbitmq-cluster.sh kill <n>      SIGKILL node n (1-3)
#   scripts/brokers/rabbitmq-cluster.sh revive <n>    start node n again, wait until it runs in the cluster
#   scripts/brokers/rabbitmq-cluster.sh leader <queue>  print the node number (1-3) leading the quorum queue
#
#   install  apt-get install rabbitmq-server (what rabbitmq.sh install does)
#   start    start the three nodes together (a restarted cluster node waits for its peers), wait for
#            each, then join nodes 2 and 3 to node 1 (stop_app, join_cluster, start_app) when they are
#            not clustered yet
#   stop     rabbitmqctl shutdown on every node (together), SIGTERM / SIGKILL after
#            RABBITMQ_STOP_TIMEOUT; then `epmd -kill`, which refuses while any Erlang node is registered
#   status   exit 0 all three running in one cluster, 1 degraded, 3 all stopped
#
# Nodes rabbit-c<n>@<host>: AMQP 127.0.0.1:570<n>, distribution 2570<n>; epmd (4369) is shared with
# any other Erlang node. None of it clashes with the single node of rabbitmq.sh (5672, 25672), which
# may run at the same time. One Erlang cookie: the rabbitmq user's (/var/lib/rabbitmq/.erlang.cookie).
# Data and logs: .brokers/rabbitmq-cluster/node<n>/ (owned by the rabbitmq user), kept between runs.
# guest/guest from localhost. Clients: amqp://guest:guest@127.0.0.1:5701,127.0.0.1:5702,127.0.0.1:5703
# msgkit declares quorum queues by default (queueType=quorum); 3.10 has no server-side default queue
# type, so another client declaring a queue without x-queue-type gets a classic (unreplicated) one.
#
# The Debian wrappers' gotchas (see rabbitmq.sh): `su` would drop the open-files limit to 1024 and
# the wrapper would write every node's output to /var/log/rabbitmq; so the nodes and rabbitmqctl run
# as the rabbitmq user through setpriv, straight from /usr/lib/rabbitmq/bin, which needs root.
#
# Environment (all optional):
#   RABBITMQ_CLUSTER_PORT    node 1's AMQP port; node n uses +n-1 (default 5701)
#   RABBITMQ_READY_TIMEOUT   seconds to wait for a node to boot (default 120)
#   RABBITMQ_STOP_TIMEOUT    seconds to wait for a node to stop before SIGKILL (default 30)
#   MSGKIT_BROKERS_DIR       state dir (default <repo>/.brokers)
set -euo pipefail

PROG="rabbitmq-cluster.sh"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CDIR="${MSGKIT_BROKERS_DIR:-$REPO_ROOT/.brokers}/rabbitmq-cluster"
NODE_HOST="$(hostname -s 2>/dev/null || uname -n)"
NODE_HOST="${NODE_HOST%%.*}"
NODES=(1 2 3)
PORT0="${RABBITMQ_CLUSTER_PORT:-5701}"
READY_TIMEOUT="${RABBITMQ_READY_TIMEOUT:-120}"
STOP_TIMEOUT="${RABBITMQ_STOP_TIMEOUT:-30}"
RMQ_BIN="/usr/lib/rabbitmq/bin"
RMQ_HOME="/var/lib/rabbitmq" # the rabbitmq user's home: its .erlang.cookie is the cluster's
# The wrappers cd to /var/lib/rabbitmq; run from / so a deleted cwd never bites.
cd /

node_name() { echo "rabbit-c$1@$NODE_HOST"; }
port_of() { echo $((PORT0 + $1 - 1)); }
dist_port_of() { echo $((PORT0 + $1 - 1 + 20000)); }
node_dir() { echo "$CDIR/node$1"; }
pid_file() { echo "$(node_dir "$1")/rabbit.pid"; }
hosts() {
  local n list=()
  for n in "${NODES[@]}"; do list+=("127.0.0.1:$(port_of "$n")"); done
  (IFS=,; echo "${list[*]}")
}

# ---------------------------------------------------------------------------------------------

valid_node() {
  case "${1:-}" in
    1 | 2 | 3) ;;
    *) die "expected a node number 1-3, got '${1:-}'" "$0 status  (lists the nodes)" ;;
  esac
}

as_rabbitmq() { # as_rabbitmq N COMMAND... — run as the rabbitmq user with node N's environment
  local n="$1" dir
  shift
  dir="$(node_dir "$n")"
  local env=(
    HOME="$RMQ_HOME" USER=rabbitmq LOGNAME=rabbitmq
    RABBITMQ_NODENAME="$(node_name "$n")"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$(port_of "$n")"
    RABBITMQ_DIST_PORT="$(dist_port_of "$n")"
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$dir/mnesia"
    RABBITMQ_LOG_BASE="$dir/logs"
    RABBITMQ_PID_FILE="$(pid_file "$n")"
    # keep epmd and the Erlang distribution on loopback too
    ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  )
  if [ "$(id -un)" = rabbitmq ]; then
    env "${env[@]}" "$@"
  elif [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env "${env[@]}" "$@"
  else
    die "this needs root (or the rabbitmq user) and setpriv: the nodes run as the rabbitmq user" \
      "run it as root (sudo $0 ...)"
  fi
}

ctl() { # ctl N ARGS... — rabbitmqctl against node N, bounded
  local n="$1"
  shift
  as_rabbitmq "$n" timeout 60 "$RMQ_BIN/rabbitmqctl" -n "$(node_name "$n")" "$@"
}

node_pid() { # node_pid N -> the node's OS pid when its beam process is alive
  local pid file
  file="$(pid_file "$1")"
  [ -r "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] || return 1
  alive "$pid" || return 1
  grep -q beam "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

show_logs() { # show_logs N
  local f
  for f in "$(node_dir "$1")/logs/$(node_name "$1").log" "$(node_dir "$1")/logs/start.out"; do
    if [ -s "$f" ]; then
      printf '[%s] --- last lines of %s ---\n' "$PROG" "$f" >&2
      tail -n 20 "$f" >&2 || true
    fi
  done
}

epmd_cleanup() {
  # `epmd -kill` refuses while any Erlang node is registered, so this never breaks a running node
  command -v epmd >/dev/null 2>&1 || return 0
  if port_open 4369; then
    if epmd -kill >/dev/null 2>&1; then
      log "epmd stopped"
    else
      log "epmd left running: other Erlang nodes are registered ($(epmd -names 2>/dev/null | tail -n +2 | tr '\n' ' '))"
    fi
  fi
}

# ---------------------------------------------------------------------------------------------
cmd_install() {
  bash "$SCRIPT_DIR/rabbitmq.sh" install
}

write_config() { # write_config N — config files owned by the rabbitmq user
  local n="$1" dir
  dir="$(node_dir "$n")"
  mkdir -p "$dir/mnesia" "$dir/logs"
  cat >"$dir/rabbitmq.conf" <<EOF
# Generated by scripts/brokers/rabbitmq-cluster.sh on every start: edit the script, not this file.
# Node $n of 3 ($(node_name "$n")), loopback only, for failover tests.
listeners.tcp.default = 127.0.0.1:$(port_of "$n")
loopback_users.guest = true
# a node that sees itself in the minority pauses instead of splitting the cluster (3 nodes)
cluster_partition_handling = pause_minority
log.file.level = info
log.console = false
EOF
  echo '[].' >"$dir/enabled_plugins" # no management plugin: its port 15672 would clash
  : >"$dir/rabbitmq-env.conf"        # not /etc/rabbitmq/rabbitmq-env.conf (the single node's)
  chown -R rabbitmq:rabbitmq "$dir" 2>/dev/null || [ "$(id -un)" = rabbitmq ] ||
    die "cannot give $dir to the rabbitmq user" "run as root"
}

launch_node() { # launch_node N — rabbitmq-server -detached (returns at once)
  local n="$1" dir nofile
  dir="$(node_dir "$n")"
  [ -e "$(pid_file "$n")" ] && rm -f "$(pid_file "$n")"
  local p
  for p in "$(port_of "$n")" "$(dist_port_of "$n")"; do
    port_open "$p" && die "port 127.0.0.1:$p (node $n) is taken by another process, and node $n of ours does not run" \
      "ss -ltnp | grep ':$p' to find it; stop it, or move the cluster: RABBITMQ_CLUSTER_PORT=... $0 start"
  done
  write_config "$n"
  # a few hundred quorum queues need more than 1024 files (see rabbitmq.sh)
  nofile="$(ulimit -Hn)"
  [ "$nofile" = unlimited ] && nofile=65536
  [ "$nofile" -gt 65536 ] && nofile=65536
  ulimit -n "$nofile" 2>/dev/null || true
  log "node $n: starting $(node_name "$n") on 127.0.0.1:$(port_of "$n") (distribution $(dist_port_of "$n")) ..."
  if ! (close_inherited_fds && cd "$dir" && as_rabbitmq "$n" "$RMQ_BIN/rabbitmq-server" -detached) \
    </dev/null >"$dir/logs/start.out" 2>&1; then
    show_logs "$n"
    die "node $n: rabbitmq-server -detached failed (output above)" "$0 stop && $0 start"
  fi
}

wait_node() { # wait_node N — until the node booted (rabbitmqctl wait) and its AMQP port accepts
  local n="$1" waited=0
  if ! as_rabbitmq "$n" timeout "$((READY_TIMEOUT + 10))" "$RMQ_BIN/rabbitmqctl" -n "$(node_name "$n")" \
    wait --timeout "$READY_TIMEOUT" "$(pid_file "$n")" >/dev/null 2>&1; then
    show_logs "$n"
    die "node $n did not become ready within ${READY_TIMEOUT} s" \
      "read $(node_dir "$n")/logs/$(node_name "$n").log (errors above)" \
      "a restarted cluster node waits for its peers: are the others up? $0 status" \
      "start from scratch: $0 stop && rm -rf '$CDIR' && $0 start"
  fi
  until port_open "$(port_of "$n")"; do
    [ "$waited" -ge 100 ] && die "node $n booted but nothing listens on 127.0.0.1:$(port_of "$n")" \
      "read $(node_dir "$n")/logs/$(node_name "$n").log"
    sleep 0.1
    waited=$((waited + 1))
  done
}

running_nodes() { # running_nodes N — the cluster's running node names, as node N sees them
  ctl "$1" -q cluster_status --formatter json 2>/dev/null |
    python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin).get("running_nodes", [])))'
}

ensure_joined() { # ensure_joined N — node N in node 1's cluster
  local n="$1" first
  first="$(node_name 1)"
  if ctl "$n" -q cluster_status --formatter json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sys.argv[1] in d.get("disk_nodes", []) else 1)' "$first"; then
    return 0
  fi
  local t0
  t0="$(now_us)"
  log "node $n: joining the cluster of $first (stop_app, join_cluster, start_app) ..."
  ctl "$n" -q stop_app >/dev/null || die "rabbitmqctl stop_app on node $n failed" "$0 status"
  if ! ctl "$n" -q join_cluster "$first" >/dev/null; then
    ctl "$n" -q start_app >/dev/null 2>&1 || true
    die "node $n could not join $first" "read $(node_dir "$n")/logs/$(node_name "$n").log" \
      "start from scratch: $0 stop && rm -rf '$CDIR' && $0 start"
  fi
  ctl "$n" -q start_app >/dev/null || die "rabbitmqctl start_app on node $n failed" "$0 status"
  log "node $n: joined in $(since "$t0")"
}

ensure_guest() {
  if ctl 1 -q authenticate_user guest guest >/dev/null 2>&1; then return 0; fi
  log "guest/guest does not authenticate: (re)creating the guest user"
  ctl 1 -q add_user guest guest >/dev/null 2>&1 || ctl 1 -q change_password guest guest >/dev/null
  ctl 1 -q set_user_tags guest administrator >/dev/null
  ctl 1 -q set_permissions -p / guest '.*' '.*' '.*' >/dev/null ||
    die "could not grant guest permissions on vhost /" "$0 status"
}

rss_summary() {
  local n pid kb total=0 parts=()
  for n in "${NODES[@]}"; do
    if pid="$(node_pid "$n")"; then
      kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
      total=$((total + kb))
      parts+=("node $n $((kb / 1024)) MB")
    fi
  done
  echo "RSS: ${parts[*]:-none}, total $((total / 1024)) MB"
}

cmd_start() {
  local t0 n pid
  t0="$(now_us)"
  [ -x "$RMQ_BIN/rabbitmq-server" ] || cmd_install
  for n in "${NODES[@]}"; do
    if pid="$(node_pid "$n")"; then log "node $n: already running (pid $pid)"; else launch_node "$n"; fi
  done
  # all three boot at once: a node that was in the cluster before waits for its peers' tables
  log "waiting up to ${READY_TIMEOUT} s for the nodes to boot (rabbitmqctl wait) ..."
  local jobs=() failed=0 j
  for n in "${NODES[@]}"; do
    wait_node "$n" &
    jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j" || failed=1; done
  [ "$failed" -eq 0 ] || die "a node did not boot (above)"
  for n in "${NODES[@]:1}"; do ensure_joined "$n"; done
  local running
  running="$(running_nodes 1 | wc -l)"
  [ "$running" -eq "${#NODES[@]}" ] ||
    die "node 1 sees $running running cluster node(s), not ${#NODES[@]}" "$0 status" "$0 restart"
  ensure_guest
  log "ready after $(since "$t0"): amqp://guest:guest@$(hosts) ($(rss_summary))"
}

stop_node() { # stop_node N — rabbitmqctl shutdown, then SIGTERM, then SIGKILL
  local n="$1" pid out
  pid="$(node_pid "$n")" || {
    rm -f "$(pid_file "$n")"
    return 0
  }
  if ! out="$(as_rabbitmq "$n" timeout "$((STOP_TIMEOUT + 5))" "$RMQ_BIN/rabbitmqctl" -n "$(node_name "$n")" \
    shutdown --timeout "$STOP_TIMEOUT" 2>&1)"; then
    log "node $n: rabbitmqctl shutdown failed or timed out: $(printf '%s' "$out" | grep -v '^\s*$' | tail -n 2 | tr '\n' ' ')"
    log "node $n: sending SIGTERM to pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
  fi
  wait_exit "$pid" "$STOP_TIMEOUT" "node $n"
  rm -f "$(pid_file "$n")"
}

cmd_stop() {
  local t0 n running=()
  t0="$(now_us)"
  for n in "${NODES[@]}"; do node_pid "$n" >/dev/null && running+=("$n"); done
  if [ "${#running[@]}" -eq 0 ]; then
    for n in "${NODES[@]}"; do rm -f "$(pid_file "$n")"; done
    log "not running"
    epmd_cleanup
    return 0
  fi
  log "stopping node(s) ${running[*]} (rabbitmqctl shutdown, together) ..."
  local jobs=() failed=0 j
  for n in "${running[@]}"; do
    stop_node "$n" &
    jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j" || failed=1; done
  [ "$failed" -eq 0 ] || die "some nodes did not stop (above)" "$0 status"
  epmd_cleanup
  log "stopped in $(since "$t0")"
}

cmd_status() {
  local n pid up=0 first=""
  for n in "${NODES[@]}"; do
    if pid="$(node_pid "$n")"; then
      up=$((up + 1))
      [ -n "$first" ] || first="$n"
      log "node $n: running, $(node_name "$n"), pid $pid, amqp 127.0.0.1:$(port_of "$n"), $(awk '/^VmRSS:/ {printf "%d MB RSS", $2/1024}' "/proc/$pid/status" 2>/dev/null)"
    else
      log "node $n: stopped"
    fi
  done
  if [ "$up" -eq 0 ]; then
    log "stopped"
    return 3
  fi
  local running
  running="$(running_nodes "$first" | wc -l)"
  if [ "$up" -eq "${#NODES[@]}" ] && [ "$running" -eq "${#NODES[@]}" ]; then
    log "running: ${running} nodes in one cluster, amqp://guest:guest@$(hosts)"
    return 0
  fi
  log "degraded: $up of ${#NODES[@]} processes up, node $first sees $running running cluster node(s) (bring a node back: $0 revive <n>; or $0 start)"
  return 1
}

cmd_kill() {
  local n="$1" pid t0
  valid_node "$n"
  t0="$(now_us)"
  if ! pid="$(node_pid "$n")"; then
    log "node $n: not running"
    return 0
  fi
  kill -KILL "$pid"
  while alive "$pid"; do sleep 0.05; done
  log "node $n ($(node_name "$n"), pid $pid) killed (SIGKILL) in $(since "$t0")"
}

cmd_revive() {
  local n="$1" pid t0
  valid_node "$n"
  t0="$(now_us)"
  if pid="$(node_pid "$n")"; then
    log "node $n: already running (pid $pid); checking it ..."
  else
    launch_node "$n"
  fi
  wait_node "$n"
  running_nodes "$n" | grep -qx "$(node_name "$n")" ||
    die "node $n booted but does not see itself running in the cluster" "$0 status"
  log "node $n: back in the cluster after $(since "$t0")"
}

cmd_leader() { # prints the number of the node leading QUEUE (a quorum queue), asking any live node
  local queue="${1:-}" n name=""
  [ -n "$queue" ] || die "usage: $0 leader <queue>"
  for n in "${NODES[@]}"; do
    node_pid "$n" >/dev/null || continue
    if name="$(ctl "$n" -q list_queues -p / name type leader --formatter json 2>/dev/null |
      python3 -c '
import json, sys
for q in json.load(sys.stdin):
    if q.get("name") == sys.argv[1]:
        if q.get("type") != "quorum":
            sys.exit("not a quorum queue: " + str(q.get("type")))
        print(q.get("leader") or "")
        sys.exit(0)
sys.exit("no such queue")' "$queue")"; then
      break
    fi
    name=""
  done
  [ -n "$name" ] || die "no live node knows a quorum queue named $queue with a leader" "$0 status" \
    "rabbitmqctl -n $(node_name 1) list_queues name type leader (as the rabbitmq user)"
  for n in "${NODES[@]}"; do
    [ "$name" = "$(node_name "$n")" ] && {
      echo "$n"
      return 0
    }
  done
  die "queue $queue is led by $name, which is not one of this cluster's nodes"
}

case "${1:-}" in
  kill) cmd_kill "${2:-}" ;;
  revive) cmd_revive "${2:-}" ;;
  leader) cmd_leader "${2:-}" ;;
  install | start | stop | status | restart) broker_main "$1" ;;
  *)
    echo "usage: $PROG install|start|stop|status|restart|kill <n>|revive <n>|leader <queue>" >&2
    exit 2
    ;;
esac
