#!/usr/bin/env bash
# A local 3-node Apache Kafka cluster (KRaft, every node a combined broker + controller) for
# msgkit's failover tests, run from the same Maven Central jars as kafka.sh: no Docker, no tarball.
#
#   scripts/brokers/kafka-cluster.sh install|start|stop|status|restart
#   scripts/brokers/kafka-cluster.sh kill <n>        SIGKILL node n (1-3), no goodbye to anyone
#   scripts/brokers/kafka-cluster.sh revive <n>      start node n again, wait until the cluster lists it
#   scripts/brokers/kafka-cluster.sh leader <topic> [partition]
#                                                    print the node id leading the partition (default 0)
#
#   install  what kafka.sh install does (java, maven, kcat, the broker jars): the jars are shared
#            with the single-node broker in .brokers/kafka/lib
#   start    write .brokers/kafka-cluster/node<n>/{server.properties,log4j2.properties}, format each
#            node's storage once (one cluster id), start the three JVMs together (a controller quorum
#            needs two of them), wait until `kcat -L` lists 3 brokers
#   stop     SIGTERM every node, wait, SIGKILL after KAFKA_STOP_TIMEOUT seconds
#   status   exit 0 all three up, 1 degraded (some down or not answering), 3 all stopped
#
# Idempotent like kafka.sh: start on a running cluster only starts what is missing and checks it;
# stop on a stopped cluster does nothing. Data stays in .brokers/kafka-cluster/node<n>/data.
# Loopback only, below Linux's ephemeral port range (32768-60999): at 3909x a node's connect to a
# peer's controller port that was not listening yet could self-connect from that very port and take
# it (bind: Address already in use, seen once in CI). Node n listens on PLAINTEXT 2909<n> (clients)
# and CONTROLLER 2919<n>; none of them
# clash with the single-node broker (9092, 9093, 19092), which may run at the same time.
# Clients: kafka://127.0.0.1:29091,127.0.0.1:29092,127.0.0.1:29093
#
# Settings for no loss with acks=all: default.replication.factor=3, min.insync.replicas=2, no unclean
# leader election, internal topics (offsets, transactions, share state) with 3 replicas, min ISR 2.
#
# Environment (all optional):
#   KAFKA_CLUSTER_HEAP        JVM heap flags per node (default "-Xmx384m -Xms128m")
#   KAFKA_CLUSTER_PORT        node 1's client port; node n uses +n-1 (default 29091)
#   KAFKA_CLUSTER_CONTROLLER_PORT  node 1's controller port; node n uses +n-1 (default 29191)
#   KAFKA_READY_TIMEOUT       seconds to wait for the cluster / a revived node (default 120)
#   KAFKA_STOP_TIMEOUT        seconds before SIGKILL (default 20)
#   KAFKA_VERSION, LOG4J_VERSION, MSGKIT_BROKERS_DIR: as for kafka.sh
set -euo pipefail

PROG="kafka-cluster.sh"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
BROKERS_DIR="${MSGKIT_BROKERS_DIR:-$REPO_ROOT/.brokers}"
CDIR="$BROKERS_DIR/kafka-cluster"
# the single-node broker's jar cache: one download for both
LIB="$BROKERS_DIR/kafka/lib"
CLUSTER_ID_FILE="$CDIR/cluster.id"
HOST="127.0.0.1"
NODES=(1 2 3)
PORT0="${KAFKA_CLUSTER_PORT:-29091}"
CONTROLLER_PORT0="${KAFKA_CLUSTER_CONTROLLER_PORT:-29191}"
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
HEAP="${KAFKA_CLUSTER_HEAP:--Xmx384m -Xms128m}"

port_of() { echo $((PORT0 + $1 - 1)); }
controller_port_of() { echo $((CONTROLLER_PORT0 + $1 - 1)); }
node_dir() { echo "$CDIR/node$1"; }
bootstrap() {
  local n list=()
  for n in "${NODES[@]}"; do list+=("$HOST:$(port_of "$n")"); done
  (IFS=,; echo "${list[*]}")
}
voters() {
  local n list=()
  for n in "${NODES[@]}"; do list+=("$n@$HOST:$(controller_port_of "$n")"); done
  (IFS=,; echo "${list[*]}")
}

# ---------------------------------------------------------------------------------------------

node_pid() { # node_pid N -> the node's pid when the process from its pid file is alive
  local pid file
  file="$(node_dir "$1")/kafka.pid"
  [ -r "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

valid_node() {
  case "${1:-}" in
    1 | 2 | 3) ;;
    *) die "expected a node number 1-3, got '${1:-}'" "$0 status  (lists the nodes)" ;;
  esac
}

show_logs() { # show_logs N
  local f
  for f in "$(node_dir "$1")/logs/server.log" "$(node_dir "$1")/logs/kafka.out"; do
    if [ -s "$f" ]; then
      printf '[%s] --- last lines of %s ---\n' "$PROG" "$f" >&2
      grep -v '^\s*$' "$f" | tail -n 20 >&2 || true
    fi
  done
}

metadata() { # kcat's view of the cluster (any live node answers); extra args: -t topic
  kcat -b "$(bootstrap)" -L -m 3 "$@" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
cmd_install() {
  # java, maven, kcat and the jars: exactly what the single-node script installs, into its cache
  MSGKIT_BROKERS_DIR="$BROKERS_DIR" bash "$SCRIPT_DIR/kafka.sh" install
}

write_config() { # write_config N
  local n="$1" dir
  dir="$(node_dir "$n")"
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/brokers/kafka-cluster.sh on every start: edit the script, not this file.
# Node $n of 3, KRaft combined mode (broker + controller), loopback only, for failover tests.
process.roles=broker,controller
node.id=${n}
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://${HOST}:$(port_of "$n"),CONTROLLER://${HOST}:$(controller_port_of "$n")
advertised.listeners=PLAINTEXT://${HOST}:$(port_of "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${dir}/data

# No loss with acks=all: three copies, a write needs two of them, never an out-of-sync leader.
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

# Internal topics replicated like the data (a few partitions: a 2-core machine).
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
share.coordinator.state.topic.num.partitions=3

# Kafka's defaults for failure detection (kept: the failover figures should be production's):
# a killed node is fenced after broker.session.timeout.ms=9000, then its partitions move.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
log.retention.hours=24
log.segment.bytes=104857600
EOF
  cat >"$dir/log4j2.properties" <<EOF
# Generated by scripts/brokers/kafka-cluster.sh. Node $n's logs go to ${dir}/logs/server.log.
status = warn
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${dir}/logs/server.log
appender.file.filePattern = ${dir}/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
}

cluster_id() {
  if [ ! -s "$CLUSTER_ID_FILE" ]; then
    mkdir -p "$CDIR"
    # a Kafka Uuid (22 chars, URL-safe base64), not starting with '-' (see kafka.sh)
    local id=""
    until [ -n "$id" ] && [ "${id:0:1}" != "-" ]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    printf '%s' "$id" >"$CLUSTER_ID_FILE"
  fi
  cat "$CLUSTER_ID_FILE"
}

java_opts() { # java_opts N
  local dir
  dir="$(node_dir "$1")"
  # shellcheck disable=SC2206
  JAVA_OPTS=($HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1 -Xss512k -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$dir/log4j2.properties" "-Dkafka.logs.dir=$dir/logs")
}

format_storage() { # format_storage N — once per node, all with the same cluster id
  local n="$1" dir t0
  dir="$(node_dir "$n")"
  [ -f "$dir/data/meta.properties" ] && return 0
  t0="$(now_us)"
  java_opts "$n"
  if ! java "${JAVA_OPTS[@]}" -cp "$LIB/*" kafka.tools.StorageTool format \
    -t "$(cluster_id)" -c "$dir/server.properties" --ignore-formatted >"$dir/logs/format.out" 2>&1; then
    cat "$dir/logs/format.out" >&2
    die "formatting node $n's storage failed (output above)" \
      "start the cluster from scratch: $0 stop && rm -rf '$CDIR' && $0 start"
  fi
  log "node $n: storage formatted in $(since "$t0")"
}

launch_node() { # launch_node N — start the JVM in the background (no wait)
  local n="$1" dir pid p
  dir="$(node_dir "$n")"
  rm -f "$dir/kafka.pid"
  for p in "$(port_of "$n")" "$(controller_port_of "$n")"; do
    port_open "$p" && die "port $HOST:$p (node $n) is taken by another process, and node $n of ours does not run" \
      "ss -ltnp | grep ':$p' to find it; stop it, or move the cluster: KAFKA_CLUSTER_PORT=... KAFKA_CLUSTER_CONTROLLER_PORT=... $0 start"
  done
  write_config "$n"
  format_storage "$n"
  java_opts "$n"
  echo "=== $(date -Is) start ===" >>"$dir/logs/kafka.out"
  (
    close_inherited_fds
    cd "$dir"
    exec setsid java "${JAVA_OPTS[@]}" -cp "$LIB/*" kafka.Kafka "$dir/server.properties"
  ) </dev/null >>"$dir/logs/kafka.out" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/kafka.pid"
  log "node $n: pid $pid on $HOST:$(port_of "$n"), controller $HOST:$(controller_port_of "$n") (logs: $dir/logs/server.log)"
}

brokers_listed() { # how many brokers the cluster's metadata lists (fenced ones are left out)
  metadata | sed -n 's/^ *\([0-9]*\) brokers:.*/\1/p' | head -n 1
}

node_serves() { # node_serves N -> 0 when node N itself answers and lists itself (registered, unfenced)
  # asked on its own port: right after a SIGKILL the others still list the dead node until the
  # controller fences it (broker.session.timeout.ms), so their view says nothing about a new process
  kcat -b "$HOST:$(port_of "$1")" -L -m 3 2>/dev/null | grep -Eq "^ *broker $1 at "
}

wait_until() { # wait_until "what" COMMAND... — poll every 0.2 s up to READY_TIMEOUT, watching the nodes
  local what="$1" t0 deadline n=0 node
  shift
  t0="$(now_us)"
  deadline=$((t0 + READY_TIMEOUT * 1000000))
  until "$@"; do
    for node in "${WAITING[@]}"; do
      if ! node_pid "$node" >/dev/null; then
        show_logs "$node"
        die "node $node exited while waiting for $what (logs above)" \
          "read $(node_dir "$node")/logs/server.log" \
          "a foreign or corrupt data dir (e.g. another cluster id): $0 stop && rm -rf '$CDIR' && $0 start" \
          "ports in use: ss -ltnp | grep -E ':(2909|2919)[1-3]'"
      fi
    done
    if [ "$(now_us)" -ge "$deadline" ]; then
      for node in "${WAITING[@]}"; do show_logs "$node"; done
      die "$what: not within ${READY_TIMEOUT} s" "read $CDIR/node*/logs/server.log" "$0 restart" \
        "raise KAFKA_READY_TIMEOUT on a slow machine"
    fi
    n=$((n + 1))
    [ $((n % 50)) -eq 0 ] && log "  still waiting for $what ($(since "$t0")) ..."
    sleep 0.2
  done
}

all_listed() { [ "$(brokers_listed)" = "${#NODES[@]}" ]; }

cmd_start() {
  local t0 n pid
  t0="$(now_us)"
  if ! command -v kcat >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1 || ! [ -f "$LIB/.complete" ]; then
    cmd_install
  fi
  WAITING=()
  local missing=()
  for n in "${NODES[@]}"; do
    if pid="$(node_pid "$n")"; then
      log "node $n: already running (pid $pid)"
    else
      missing+=("$n")
    fi
    WAITING+=("$n")
  done
  # format new nodes side by side (a JVM each, ~2-3 s), then launch them together
  local jobs=() failed=0 j
  [ "${#missing[@]}" -gt 0 ] && cluster_id >/dev/null # one id for all, before they race for it
  for n in "${missing[@]}"; do
    write_config "$n"
    format_storage "$n" &
    jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j" || failed=1; done
  [ "$failed" -eq 0 ] || die "formatting storage failed (above)"
  for n in "${missing[@]}"; do launch_node "$n"; done
  log "waiting up to ${READY_TIMEOUT} s until the cluster lists ${#NODES[@]} brokers (kcat -L) ..."
  wait_until "3 brokers in the cluster's metadata" all_listed
  log "ready after $(since "$t0"): bootstrap $(bootstrap) ($(rss_summary))"
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

stop_node() { # stop_node N — SIGTERM, wait, SIGKILL; prints nothing when already stopped
  local n="$1" pid
  pid="$(node_pid "$n")" || {
    rm -f "$(node_dir "$n")/kafka.pid"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  wait_exit "$pid" "$STOP_TIMEOUT" "node $n" "the next start recovers its logs"
  rm -f "$(node_dir "$n")/kafka.pid"
}

cmd_stop() {
  local t0 n running=()
  t0="$(now_us)"
  for n in "${NODES[@]}"; do node_pid "$n" >/dev/null && running+=("$n"); done
  if [ "${#running[@]}" -eq 0 ]; then
    for n in "${NODES[@]}"; do rm -f "$(node_dir "$n")/kafka.pid"; done
    log "not running"
    return 0
  fi
  # All at once: one by one, the last node waits for a controller majority that has already left.
  log "stopping node(s) ${running[*]} (SIGTERM, together) ..."
  local pids=()
  for n in "${running[@]}"; do
    stop_node "$n" &
    pids+=($!)
  done
  local failed=0 p
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ "$failed" -eq 0 ] || die "some nodes did not stop (above)" "$0 status"
  log "stopped in $(since "$t0")"
}

cmd_status() {
  local n pid up=0 line
  for n in "${NODES[@]}"; do
    if pid="$(node_pid "$n")"; then
      up=$((up + 1))
      line="running, pid $pid, $HOST:$(port_of "$n"), $(awk '/^VmRSS:/ {printf "%d MB RSS", $2/1024}' "/proc/$pid/status" 2>/dev/null)"
    else
      line="stopped"
    fi
    log "node $n: $line"
  done
  if [ "$up" -eq 0 ]; then
    log "stopped"
    return 3
  fi
  local listed
  listed="$(brokers_listed)"
  if [ "$up" -eq "${#NODES[@]}" ] && [ "$listed" = "${#NODES[@]}" ]; then
    log "running: ${listed} brokers, bootstrap $(bootstrap)"
    return 0
  fi
  log "degraded: $up of ${#NODES[@]} processes up, the metadata lists ${listed:-no} brokers (bring a node back: $0 revive <n>; or $0 start)"
  return 1
}

cmd_kill() { # SIGKILL: what a crashed machine looks like to the others (no controlled shutdown)
  local n="$1" pid t0
  valid_node "$n"
  t0="$(now_us)"
  if ! pid="$(node_pid "$n")"; then
    log "node $n: not running"
    return 0
  fi
  kill -KILL "$pid"
  while alive "$pid"; do sleep 0.05; done
  log "node $n (pid $pid) killed (SIGKILL) in $(since "$t0")"
}

cmd_revive() {
  local n="$1" pid t0
  valid_node "$n"
  t0="$(now_us)"
  if pid="$(node_pid "$n")"; then
    log "node $n: already running (pid $pid); checking the cluster lists it ..."
  else
    log "node $n: starting ..."
    launch_node "$n"
  fi
  WAITING=("$n")
  wait_until "node $n to serve again, unfenced" node_serves "$n"
  log "node $n: back in the cluster after $(since "$t0")"
}

cmd_leader() { # prints the leader's node id of TOPIC's PARTITION; exit 1 when it has none
  local topic="${1:-}" partition="${2:-0}" meta leader
  [ -n "$topic" ] || die "usage: $0 leader <topic> [partition]"
  meta="$(metadata -t "$topic")" || die "no live node answered a metadata request at $(bootstrap)" "$0 status"
  leader="$(printf '%s\n' "$meta" | sed -n "s/^ *partition ${partition}, leader \\(-\\{0,1\\}[0-9]*\\),.*/\\1/p" | head -n 1)"
  if [ -z "$leader" ]; then
    printf '%s\n' "$meta" | grep -E 'topic|partition|Broker' >&2 || true
    die "topic $topic has no partition $partition in the cluster's metadata" "kcat -b $(bootstrap) -L -t $topic"
  fi
  if [ "$leader" = "-1" ]; then
    log "partition $partition of $topic has no leader right now (an election is under way)" >&2
    echo none
    return 1
  fi
  echo "$leader"
}

case "${1:-}" in
  kill) cmd_kill "${2:-}" ;;
  revive) cmd_revive "${2:-}" ;;
  leader) cmd_leader "${2:-}" "${3:-0}" ;;
  install | start | stop | status | restart) broker_main "$1" ;;
  *)
    echo "usage: $PROG install|start|stop|status|restart|kill <n>|revive <n>|leader <topic> [partition]" >&2
    exit 2
    ;;
esac
