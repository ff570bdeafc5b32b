#!/usr/bin/env bash
# Install, start, stop and restart a local single-node Apache Kafka (KRaft, combined
# broker+controller) for msgkit's broker tests, run from Maven Central jars: no Docker, no tarball.
#
#   scripts/brokers/kafka.sh install|start|stop|status|restart
#
#   install  apt-get java/maven/kcat when missing; copy the broker jars into .brokers/kafka/lib
#            (skipped when cached for the same pom + version)
#   start    write .brokers/kafka/{server.properties,log4j2.properties}, format the storage once,
#            start `java kafka.Kafka` in the background (pid file), wait until `kcat -L` sees it
#   stop     SIGTERM by pid, wait for exit, SIGKILL after KAFKA_STOP_TIMEOUT seconds
#   restart  stop + start, keeping the data (topics, offsets) in .brokers/kafka/data
#   status   exit 0 running, 3 stopped, 1 unhealthy
#
# Idempotent: start on a running broker only checks it; stop on a stopped broker does nothing.
# Listens on 127.0.0.1 only: PLAINTEXT 9092 (clients), CONTROLLER 9093, and PROXIED 19092 for
# fault-injection tests: that listener advertises 127.0.0.1:19093, where a test's TCP proxy listens
# and forwards to 19092. Kafka clients talk to the addresses the broker advertises, so a client
# bootstrapped at the proxy (kafka://127.0.0.1:19093) only ever talks through it, and the test can
# cut every one of its connections. Nothing listens on 19093 unless such a test runs.
#
# Environment (all optional):
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version (default: the pom's, 4.1.1)
#   LOG4J_VERSION          log4j-core / log4j-slf4j-impl version (default: the pom's)
#   KAFKA_HEAP             JVM heap flags (default "-Xmx1g -Xms256m")
#   KAFKA_READY_TIMEOUT    seconds to wait for the broker (default 60)
#   KAFKA_STOP_TIMEOUT     seconds before SIGKILL (default 20)
#   KAFKA_PORT             client (PLAINTEXT) port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   KAFKA_PROXIED_PORT     the PROXIED listener's port (default 19092 with the default KAFKA_PORT,
#                          else none); KAFKA_PROXY_PORT: the proxy port it advertises (default +1)
#   MSGKIT_BROKERS_DIR     state dir (default <repo>/.brokers); with the two ports above, lets a
#                          second broker run beside the default one
set -euo pipefail

PROG="kafka.sh"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
BROKERS_DIR="${MSGKIT_BROKERS_DIR:-$REPO_ROOT/.brokers}"
KDIR="$BROKERS_DIR/kafka"
LIB="$KDIR/lib"
DATA="$KDIR/data"
LOGS="$KDIR/logs"
CONF="$KDIR/server.properties"
LOG4J_CONF="$KDIR/log4j2.properties"
PID_FILE="$KDIR/kafka.pid"
CLUSTER_ID_FILE="$KDIR/cluster.id"
HOST="127.0.0.1"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
# a second broker on other ports (MSGKIT_BROKERS_DIR + KAFKA_PORT) gets no PROXIED listener unless asked
PROXIED_PORT="${KAFKA_PROXIED_PORT-$([ "$PORT" = 9092 ] && echo 19092 || true)}"
PROXY_PORT="${KAFKA_PROXY_PORT:-$((${PROXIED_PORT:-0} + 1))}"
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
HEAP="${KAFKA_HEAP:--Xmx1g -Xms256m}"

# ---------------------------------------------------------------------------------------------

broker_pid() { pid_from_file "$PID_FILE" 'kafka\.Kafka'; }

show_logs() { tail_logs "$LOGS/server.log" "$LOGS/kafka.out"; }

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }

# ---------------------------------------------------------------------------------------------
mvn_props() {
  MVN_PROPS=()
  [ -n "${KAFKA_VERSION:-}" ] && MVN_PROPS+=("-Dkafka.version=$KAFKA_VERSION")
  [ -n "${LOG4J_VERSION:-}" ] && MVN_PROPS+=("-Dlog4j.version=$LOG4J_VERSION")
  return 0
}

cache_key() { # what the cached lib/ was made from
  echo "pom-sha256=$(sha256sum "$POM" | cut -c1-64) kafka=${KAFKA_VERSION:-pom} log4j=${LOG4J_VERSION:-pom}"
}

cmd_install() {
  local t0
  t0="$(now_us)"
  if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
    apt_install openjdk-17-jre-headless
  fi
  command -v mvn >/dev/null 2>&1 || apt_install maven
  command -v kcat >/dev/null 2>&1 || apt_install kcat
  [ "$(java_major)" -ge 17 ] ||
    die "Kafka 4 needs Java 17+, found: $(java -version 2>&1 | head -n 1)" \
      "apt-get install openjdk-17-jre-headless && update-alternatives --config java"

  mkdir -p "$KDIR"
  if [ -f "$LIB/.complete" ] && [ "$(cat "$LIB/.complete")" = "$(cache_key)" ]; then
    log "broker jars cached in $LIB ($(kafka_jar_version))"
    return 0
  fi
  mvn_props
  log "downloading the Kafka broker jars from Maven Central into $LIB ..."
  rm -rf "$LIB.tmp"
  mkdir -p "$LOGS"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" "${MVN_PROPS[@]}" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" >"$LOGS/mvn.out" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$LOGS/mvn.out" | tail -n 30 >&2
    rm -rf "$LIB.tmp"
    die "mvn dependency:copy-dependencies failed for $POM" \
      "check Maven Central is reachable: mvn -B dependency:get -Dartifact=org.apache.kafka:kafka_2.13:${KAFKA_VERSION:-4.1.1}" \
      "a bad KAFKA_VERSION/LOG4J_VERSION override? unset them" \
      "$HOME/.m2/settings.xml (mirrors, proxies)"
  fi
  cache_key >"$LIB.tmp/.complete"
  rm -rf "$LIB"
  mv "$LIB.tmp" "$LIB"
  log "$(find "$LIB" -name '*.jar' | wc -l) jars ($(du -sh "$LIB" | cut -f1)) for $(kafka_jar_version) in $(since "$t0")"
}

kafka_jar_version() {
  local j
  j="$(find "$LIB" -maxdepth 1 -name 'kafka_2.13-*.jar' | head -n 1)"
  [ -n "$j" ] && basename "$j" .jar || echo "kafka (no jar)"
}

write_config() {
  mkdir -p "$DATA" "$LOGS"
  local listeners="PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}"
  local advertised="PLAINTEXT://${HOST}:${PORT}"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ -n "$PROXIED_PORT" ]; then
    listeners="$listeners,PROXIED://${HOST}:${PROXIED_PORT}"
    advertised="$advertised,PROXIED://${HOST}:${PROXY_PORT}"
    protocols="$protocols,PROXIED:PLAINTEXT"
  fi
  cat >"$CONF" <<EOF
# Generated by scripts/brokers/kafka.sh on every start: edit the script, not this file.
# Single node, KRaft combined mode (broker + controller), loopback only, for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CONTROLLER_PORT}
# PROXIED (when present): for tests that cut connections through a TCP proxy on its advertised port
listeners=${listeners}
advertised.listeners=${advertised}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=${protocols}
log.dirs=${DATA}

num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

# Internal topics: one replica on one node; a few partitions so the first group/transaction
# does not create 50 partitions on a 2-core machine.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=3

num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=104857600
EOF
  cat >"$LOG4J_CONF" <<EOF
# Generated by scripts/brokers/kafka.sh. Broker logs go to ${LOGS}/server.log.
status = warn
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${LOGS}/server.log
appender.file.filePattern = ${LOGS}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
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
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22 chars). Not one that
    # starts with '-': StorageTool would read `-t -xyz…` as a missing argument (1 run in 64).
    local id=""
    until [ -n "$id" ] && [ "${id:0:1}" != "-" ]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    printf '%s' "$id" >"$CLUSTER_ID_FILE"
  fi
  cat "$CLUSTER_ID_FILE"
}

java_opts() {
  # shellcheck disable=SC2206
  JAVA_OPTS=($HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafka.logs.dir=$LOGS")
}

format_storage() {
  if [ -f "$DATA/meta.properties" ]; then
    return 0
  fi
  local t0
  t0="$(now_us)"
  log "formatting storage in $DATA (cluster id $(cluster_id)) ..."
  java_opts
  if ! java "${JAVA_OPTS[@]}" -cp "$LIB/*" kafka.tools.StorageTool format \
    -t "$(cluster_id)" -c "$CONF" --ignore-formatted >"$LOGS/format.out" 2>&1; then
    cat "$LOGS/format.out" >&2
    die "kafka-storage format failed (output above)" \
      "remove the data dir and retry: rm -rf '$DATA' && $0 start"
  fi
  log "storage formatted in $(since "$t0")"
}

kcat_ready() { # the broker accepts connections, answers metadata and lists itself
  port_open "$PORT" && kcat -b "$HOST:$PORT" -L -m 2 2>/dev/null | grep -q '1 brokers:'
}

cmd_start() {
  local t0 pid
  t0="$(now_us)"
  if pid="$(broker_pid)"; then
    log "already running (pid $pid); checking it answers ..."
  else
    if ! command -v kcat >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1 ||
      ! [ -f "$LIB/.complete" ] || [ "$(cat "$LIB/.complete")" != "$(cache_key)" ]; then
      cmd_install
    fi
    rm -f "$PID_FILE"
    local p
    for p in "$PORT" "$CONTROLLER_PORT" $PROXIED_PORT; do
      port_open "$p" && die "port $HOST:$p is taken by another process, and no broker of ours runs" \
        "ss -ltnp | grep ':$p' to find it; stop it (or docker compose down kafka), then re-run: $0 start"
    done
    write_config
    format_storage
    java_opts
    log "starting $(kafka_jar_version) (KRaft, node 1) on $HOST:$PORT, controller $HOST:$CONTROLLER_PORT${PROXIED_PORT:+, proxied $HOST:$PROXIED_PORT (advertised as $HOST:$PROXY_PORT)} ..."
    {
      echo "=== $(date -Is) start ==="
    } >>"$LOGS/kafka.out"
    # setsid: the broker gets its own session, so it outlives the calling shell/test process
    # group; all of its output goes to files so a caller reading our stdout never hangs.
    (
      close_inherited_fds
      cd "$KDIR"
      exec setsid java "${JAVA_OPTS[@]}" -cp "$LIB/*" kafka.Kafka "$CONF"
    ) </dev/null >>"$LOGS/kafka.out" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    log "pid $pid, logs in $LOGS/server.log"
  fi

  log "waiting up to ${READY_TIMEOUT} s for kcat -b $HOST:$PORT -L ..."
  local deadline=$(($(now_us) + READY_TIMEOUT * 1000000)) n=0
  until kcat_ready; do
    if ! alive "$pid"; then
      rm -f "$PID_FILE"
      show_logs
      die "the broker process exited during startup (logs above)" \
        "read $LOGS/server.log and $LOGS/kafka.out" \
        "corrupt/foreign data dir (e.g. other cluster id): rm -rf '$DATA' && $0 start" \
        "port in use: ss -ltnp | grep -E ':($PORT|$CONTROLLER_PORT)'"
    fi
    if [ "$(now_us)" -ge "$deadline" ]; then
      show_logs
      die "the broker did not answer within ${READY_TIMEOUT} s (process $pid is still running)" \
        "read $LOGS/server.log" "$0 restart" "raise KAFKA_READY_TIMEOUT on a slow machine"
    fi
    n=$((n + 1))
    [ $((n % 50)) -eq 0 ] && log "  still waiting ($(since "$t0")) ..."
    sleep 0.1
  done
  log "ready after $(since "$t0") (pid $pid, bootstrap $HOST:$PORT)"
}

cmd_stop() {
  local t0 pid
  t0="$(now_us)"
  if ! pid="$(broker_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping broker pid $pid (SIGTERM, controlled shutdown) ..."
  kill -TERM "$pid" 2>/dev/null || true
  wait_exit "$pid" "$STOP_TIMEOUT" broker "the next start recovers the logs"
  rm -f "$PID_FILE"
  log "stopped in $(since "$t0")"
}

cmd_status() {
  local pid
  if pid="$(broker_pid)"; then
    if kcat_ready; then
      log "running: pid $pid, $(kafka_jar_version), bootstrap $HOST:$PORT"
      return 0
    fi
    log "process $pid is alive but does not answer on $HOST:$PORT (starting, or stuck: try $0 restart)"
    return 1
  fi
  log "stopped"
  return 3
}

broker_main "$@"
