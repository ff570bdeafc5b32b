#!/usr/bin/env bash
# Install, start, stop and restart a local ActiveMQ Classic (Debian's `activemq`, 5.17) for msgkit's
# broker tests. No Docker, no systemd, not Debian's instance layout: a private instance under
# .brokers/activemq/ is started with plain `java -jar activemq.jar` and stopped by PID.
#
#   scripts/brokers/activemq.sh install|start|stop|status|restart
#
#   install  apt-get install activemq (and a JDK for javac) when missing
#   start    write .brokers/activemq/conf/{activemq.xml,log4j.properties}, start the
#            broker in the background (pid file), wait until STOMP answers a CONNECT with CONNECTED
#   stop     SIGTERM by pid (the broker's shutdown hook closes KahaDB), SIGKILL after
#            ACTIVEMQ_STOP_TIMEOUT seconds
#   restart  stop + start, keeping the data (queues, messages, scheduled jobs) in .brokers/activemq/data
#   status   exit 0 running, 3 stopped, 1 unhealthy
#
# Idempotent: start on a running broker only checks it; stop on a stopped broker does nothing.
# Listens on 127.0.0.1 only: STOMP 61613 (stomp+nio), OpenWire 61616 (for the JMS interop client).
# The instance: persistent KahaDB, scheduler on (AMQ_SCHEDULED_DELAY works), virtual topics
# (ActiveMQ's default `VirtualTopic.>` → `Consumer.*.VirtualTopic.>`), dead letters of queue Q in
# DLQ.Q, STOMP body limit ACTIVEMQ_MAX_DATA_LENGTH, simple authentication: user msgkit/msgkit; a
# CONNECT without login/passcode is let in as anonymous (ACTIVEMQ_ANONYMOUS=true), a wrong login is
# refused with an ERROR frame. No redeliveryPlugin unless ACTIVEMQ_REDELIVERY_DELAY is set.
# Logs: .brokers/activemq/logs/activemq.log (broker), activemq.out (JVM stdout/stderr).
#
# Environment (all optional):
#   ACTIVEMQ_STOMP_PORT       STOMP port (default 61613)
#   ACTIVEMQ_OPENWIRE_PORT    OpenWire port (default 61616)
#   ACTIVEMQ_HEAP             JVM heap flags (default "-Xms128m -Xmx1g", ActiveMQ's own default heap)
#   ACTIVEMQ_READY_TIMEOUT    seconds to wait for STOMP to answer (default 60)
#   ACTIVEMQ_STOP_TIMEOUT     seconds before SIGKILL (default 20)
#   ACTIVEMQ_USER             the one user of the instance (default msgkit)
#   ACTIVEMQ_PASSWORD         its password (default msgkit; a test-only instance)
#   ACTIVEMQ_ANONYMOUS        let a CONNECT without credentials in (default true; false = login required)
#   ACTIVEMQ_MAX_DATA_LENGTH  STOMP body limit in bytes (default 67108864 = 64 MiB). ActiveMQ's own
#                             default is 100 MiB, but the broker needs a heap of over 10x the body:
#                             seen: 512 MiB heap takes 32 MiB (48 MiB: OutOfMemoryError in an ERROR
#                             frame), 1 GiB takes 64 MiB (100 MiB: OOM), 2 GiB takes 100 MiB.
#   ACTIVEMQ_REDELIVERY_DELAY 0 (default): no redeliveryPlugin, like a stock broker: a STOMP NACK
#                             sends a persistent message to DLQ.<queue> at once (drops a
#                             non-persistent one). N >= 1000 (the plugin refuses less): the broker
#                             re-sends a NACKed message to the back of its queue after N ms (+ up to
#                             ~0.5 s scheduler tick), forever, flagged redelivered:true, no count.
#   ACTIVEMQ_STOMP_SCHEME     stomp+nio (default) or stomp (one blocking thread per connection)
#   ACTIVEMQ_JOURNAL_SYNC     KahaDB journalDiskSyncStrategy: always (default: fsync before the
#                             receipt), periodic (every second: survives kill -9, not a power cut)
#   MSGKIT_BROKERS_DIR        state dir (default <repo>/.brokers); with the two ports above, lets a
#                             second broker run beside the default one
set -euo pipefail

PROG="activemq.sh"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
BROKERS_DIR="${MSGKIT_BROKERS_DIR:-$REPO_ROOT/.brokers}"
ADIR="$BROKERS_DIR/activemq"
CONF_DIR="$ADIR/conf"
DATA="$ADIR/data"
LOGS="$ADIR/logs"
PID_FILE="$ADIR/activemq.pid"
AMQ_HOME="/usr/share/activemq"
AMQ_JAR="$AMQ_HOME/bin/activemq.jar"
HOST="127.0.0.1"
STOMP_PORT="${ACTIVEMQ_STOMP_PORT:-61613}"
OPENWIRE_PORT="${ACTIVEMQ_OPENWIRE_PORT:-61616}"
HEAP="${ACTIVEMQ_HEAP:--Xms128m -Xmx1g}"
READY_TIMEOUT="${ACTIVEMQ_READY_TIMEOUT:-60}"
STOP_TIMEOUT="${ACTIVEMQ_STOP_TIMEOUT:-20}"
AMQ_USER="${ACTIVEMQ_USER:-msgkit}"
AMQ_PASSWORD="${ACTIVEMQ_PASSWORD:-msgkit}"
ANONYMOUS="${ACTIVEMQ_ANONYMOUS:-true}"
MAX_DATA_LENGTH="${ACTIVEMQ_MAX_DATA_LENGTH:-67108864}"
REDELIVERY_DELAY="${ACTIVEMQ_REDELIVERY_DELAY:-0}"
STOMP_SCHEME="${ACTIVEMQ_STOMP_SCHEME:-stomp+nio}"
JOURNAL_SYNC="${ACTIVEMQ_JOURNAL_SYNC:-always}"

# ---------------------------------------------------------------------------------------------

broker_pid() { pid_from_file "$PID_FILE" 'activemq\.jar'; }

show_logs() { tail_logs "$LOGS/activemq.log" "$LOGS/activemq.out"; }

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }

amq_version() { dpkg-query -W -f='${Version}' activemq 2>/dev/null || echo '?'; }

installed() {
  dpkg-query -W -f='${Status}' activemq 2>/dev/null | grep -q 'install ok installed' &&
    [ -f "$AMQ_JAR" ] && command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
cmd_install() {
  local t0
  t0="$(now_us)"
  if installed; then
    log "activemq already installed ($(amq_version), java $(java_major))"
    return 0
  fi
  # The package pulls a JRE; javac (the JMS interop test) needs the JDK.
  command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 || apt_install default-jdk-headless
  dpkg-query -W -f='${Status}' activemq 2>/dev/null | grep -q 'install ok installed' || apt_install activemq
  [ -f "$AMQ_JAR" ] || die "activemq is installed but $AMQ_JAR is missing" \
    "dpkg -L activemq | grep activemq.jar" "apt-get install --reinstall activemq"
  # The package ships an init script; nothing starts by itself on our machines (no systemd, service
  # starts blocked), but stop a Debian instance apt may have started: it would hold 61616.
  if [ -x /etc/init.d/activemq ] && pgrep -u activemq -f activemq.jar >/dev/null 2>&1; then
    log "apt started Debian's own activemq instance; stopping it so that $PROG controls the ports"
    as_root /etc/init.d/activemq stop >/dev/null 2>&1 || true
  fi
  log "activemq $(amq_version) installed in $(since "$t0")"
}

xml_escape() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }

write_config() {
  mkdir -p "$CONF_DIR" "$DATA" "$LOGS"
  case "$ANONYMOUS" in true | false) ;; *) die "ACTIVEMQ_ANONYMOUS must be true or false, got '$ANONYMOUS'" ;; esac
  case "$STOMP_SCHEME" in stomp | stomp+nio) ;; *) die "ACTIVEMQ_STOMP_SCHEME must be stomp+nio or stomp, got '$STOMP_SCHEME'" ;; esac
  case "$JOURNAL_SYNC" in always | periodic) ;; *) die "ACTIVEMQ_JOURNAL_SYNC must be always or periodic, got '$JOURNAL_SYNC'" ;; esac
  [[ "$MAX_DATA_LENGTH" =~ ^[0-9]+$ ]] && [ "$MAX_DATA_LENGTH" -le 2147483647 ] ||
    die "ACTIVEMQ_MAX_DATA_LENGTH must be a byte count up to 2147483647, got '$MAX_DATA_LENGTH'"
  [[ "$REDELIVERY_DELAY" =~ ^[0-9]+$ ]] && { [ "$REDELIVERY_DELAY" -eq 0 ] || [ "$REDELIVERY_DELAY" -ge 1000 ]; } ||
    die "ACTIVEMQ_REDELIVERY_DELAY must be 0 (off) or >= 1000 ms (ActiveMQ refuses less), got '$REDELIVERY_DELAY'"
  # A frame is its body plus headers (at most 1000 × 10 KiB lines, fixed in ActiveMQ 5.17).
  local max_frame=$((MAX_DATA_LENGTH + 11 * 1024 * 1024))
  local redelivery=""
  if [ "$REDELIVERY_DELAY" -gt 0 ]; then
    redelivery="
      <!-- A STOMP NACK is a 'poison ack': without this plugin the message goes straight to the DLQ.
           With it the broker re-sends the message to its queue (at the back) through the scheduler
           after the delay, forever (maximumRedeliveries -1): msgkit's core counts attempts and
           dead-letters itself. The plugin refuses delays under 1000 ms. -->
      <redeliveryPlugin fallbackToDeadLetter=\"true\" sendToDlqIfMaxRetriesExceeded=\"true\">
        <redeliveryPolicyMap>
          <redeliveryPolicyMap>
            <defaultEntry>
              <redeliveryPolicy maximumRedeliveries=\"-1\" initialRedeliveryDelay=\"${REDELIVERY_DELAY}\"
                                redeliveryDelay=\"${REDELIVERY_DELAY}\" useExponentialBackOff=\"false\"/>
            </defaultEntry>
          </redeliveryPolicyMap>
        </redeliveryPolicyMap>
      </redeliveryPlugin>"
  fi
  cat >"$CONF_DIR/activemq.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/brokers/activemq.sh on every start: edit the script, not this file. -->
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
                           http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="msgkit" useJmx="false"
          persistent="true" schedulerSupport="true" useShutdownHook="true"
          dataDirectory="$(xml_escape "$DATA")" tmpDataDirectory="$(xml_escape "$DATA/tmp")"
          schedulerDirectory="$(xml_escape "$DATA/scheduler")">
    <destinationPolicy>
      <policyMap>
        <policyEntries>
          <!-- Dead letters of queue Q go to DLQ.Q (not one shared ActiveMQ.DLQ), so tests can look. -->
          <policyEntry queue="&gt;">
            <deadLetterStrategy>
              <individualDeadLetterStrategy queuePrefix="DLQ." useQueueForQueueMessages="true"/>
            </deadLetterStrategy>
          </policyEntry>
        </policyEntries>
      </policyMap>
    </destinationPolicy>
    <persistenceAdapter>
      <kahaDB directory="$(xml_escape "$DATA/kahadb")" journalDiskSyncStrategy="${JOURNAL_SYNC}"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage percentOfJvmHeap="60"/></memoryUsage>
        <storeUsage><storeUsage limit="4 gb"/></storeUsage>
        <tempUsage><tempUsage limit="1 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <plugins>
      <!-- One user; a CONNECT without credentials is anonymous when anonymousAccessAllowed. No
           authorization plugin: every authenticated connection may use every destination. -->
      <simpleAuthenticationPlugin anonymousAccessAllowed="${ANONYMOUS}">
        <users>
          <authenticationUser username="$(xml_escape "$AMQ_USER")" password="$(xml_escape "$AMQ_PASSWORD")" groups="users,admins"/>
        </users>
      </simpleAuthenticationPlugin>${redelivery}
    </plugins>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://${HOST}:${OPENWIRE_PORT}?maximumConnections=1000&amp;wireFormat.maxFrameSize=${max_frame}"/>
      <transportConnector name="stomp" uri="${STOMP_SCHEME}://${HOST}:${STOMP_PORT}?maximumConnections=1000&amp;wireFormat.maxDataLength=${MAX_DATA_LENGTH}&amp;wireFormat.maxFrameSize=${max_frame}&amp;transport.hbGracePeriodMultiplier=1.5"/>
    </transportConnectors>
  </broker>
</beans>
EOF
  chmod 600 "$CONF_DIR/activemq.xml" # it holds the instance's password
  cat >"$CONF_DIR/log4j.properties" <<EOF
# Generated by scripts/brokers/activemq.sh. Broker logs go to ${LOGS}/activemq.log.
log4j.rootLogger=INFO, logfile
log4j.logger.org.apache.activemq.spring=WARN
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.logger.org.apache.activemq.transport.stomp=INFO
log4j.appender.logfile=org.apache.log4j.RollingFileAppender
log4j.appender.logfile.file=${LOGS}/activemq.log
log4j.appender.logfile.maxFileSize=10MB
log4j.appender.logfile.maxBackupIndex=3
log4j.appender.logfile.append=true
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
EOF
}

java_opts() {
  # Java 17: the same --add-opens/--add-exports as Debian's /usr/bin/activemq.
  # shellcheck disable=SC2206
  JAVA_OPTS=($HEAP -Djava.awt.headless=true -Djava.io.tmpdir="$DATA/tmp"
    --add-reads=java.xml=java.logging
    --add-opens java.base/java.security=ALL-UNNAMED
    --add-opens java.base/java.net=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.naming/javax.naming.spi=ALL-UNNAMED
    --add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED
    --add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED
    --add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED
    --add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED
    --add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED
    "-Dactivemq.home=$AMQ_HOME" "-Dactivemq.base=$ADIR" "-Dactivemq.conf=$CONF_DIR"
    "-Dactivemq.data=$DATA" "-Dactivemq.classpath=$CONF_DIR"
    "-Dlog4j.configuration=file:$CONF_DIR/log4j.properties")
}

stomp_ready() {
  # Ready = STOMP answers a CONNECT (with the instance's login) with CONNECTED, not only an open
  # port: the port opens before the broker has started its stores. Runs in this shell: the
  # password never appears in a process list.
  local frame="" ok=1
  port_open "$STOMP_PORT" || return 1
  { exec 7<>"/dev/tcp/$HOST/$STOMP_PORT"; } 2>/dev/null || return 1
  printf 'CONNECT\naccept-version:1.2\nhost:localhost\nlogin:%s\npasscode:%s\n\n\0' \
    "$AMQ_USER" "$AMQ_PASSWORD" >&7 2>/dev/null || { exec 7>&-; return 1; }
  # A frame ends with NUL: read the whole CONNECTED (or ERROR) frame.
  if IFS= read -r -d '' -t 5 frame <&7 && [ "${frame%%$'\n'*}" = CONNECTED ]; then
    ok=0
    # Leave politely (DISCONNECT with a receipt) so the broker logs no failed connection.
    printf 'DISCONNECT\nreceipt:ready\n\n\0' >&7 2>/dev/null && IFS= read -r -d '' -t 2 _ <&7 || true
  fi
  exec 7>&-
  STOMP_REPLY="$(printf '%s' "$frame" | tr '\n' ' ' | cut -c1-200)"
  return "$ok"
}

cmd_start() {
  local t0 pid
  t0="$(now_us)"
  if pid="$(broker_pid)"; then
    log "already running (pid $pid); checking that STOMP answers ..."
  else
    installed || cmd_install
    [ "$(java_major)" -ge 11 ] 2>/dev/null ||
      die "ActiveMQ 5.17 needs Java 11+, found: $(java -version 2>&1 | head -n 1)" \
        "apt-get install default-jdk-headless && update-alternatives --config java"
    rm -f "$PID_FILE"
    local p
    for p in "$STOMP_PORT" "$OPENWIRE_PORT"; do
      port_open "$p" && die "port $HOST:$p is taken by another process, and no broker of ours runs" \
        "ss -ltnp | grep ':$p' to find it (Debian's own instance? /etc/init.d/activemq stop), or docker compose down activemq" \
        "run a second broker on other ports: ACTIVEMQ_STOMP_PORT=... ACTIVEMQ_OPENWIRE_PORT=... MSGKIT_BROKERS_DIR=... $0 start"
    done
    write_config
    mkdir -p "$DATA/tmp"
    java_opts
    log "starting ActiveMQ $(amq_version) (STOMP $HOST:$STOMP_PORT, OpenWire $HOST:$OPENWIRE_PORT, data $DATA) ..."
    echo "=== $(date -Is) start ===" >>"$LOGS/activemq.out"
    # setsid: the broker gets its own session, so it outlives the calling shell/test process group;
    # all of its output goes to files so a caller reading our stdout never hangs.
    (
      close_inherited_fds
      cd "$ADIR"
      exec setsid java "${JAVA_OPTS[@]}" -jar "$AMQ_JAR" start "xbean:file:$CONF_DIR/activemq.xml"
    ) </dev/null >>"$LOGS/activemq.out" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    log "pid $pid, logs in $LOGS/activemq.log"
  fi

  log "waiting up to ${READY_TIMEOUT} s for a STOMP CONNECTED on $HOST:$STOMP_PORT ..."
  local deadline=$(($(now_us) + READY_TIMEOUT * 1000000)) n=0
  STOMP_REPLY=""
  until stomp_ready; do
    if ! alive "$pid"; then
      rm -f "$PID_FILE"
      show_logs
      die "the broker process exited during startup (logs above)" \
        "read $LOGS/activemq.log and $LOGS/activemq.out" \
        "a bad config override? look at $CONF_DIR/activemq.xml" \
        "corrupt KahaDB after a crash: rm -rf '$DATA/kahadb' && $0 start (drops the messages)" \
        "port in use: ss -ltnp | grep -E ':($STOMP_PORT|$OPENWIRE_PORT)'"
    fi
    if [ "$(now_us)" -ge "$deadline" ]; then
      show_logs
      die "STOMP did not answer CONNECT within ${READY_TIMEOUT} s (process $pid is running; last reply: '${STOMP_REPLY:-none}')" \
        "read $LOGS/activemq.log" "$0 restart" "raise ACTIVEMQ_READY_TIMEOUT on a slow machine"
    fi
    n=$((n + 1))
    [ $((n % 50)) -eq 0 ] && log "  still waiting ($(since "$t0")) ..."
    sleep 0.1
  done
  port_open "$OPENWIRE_PORT" || log "warning: STOMP answers but nothing listens on OpenWire $HOST:$OPENWIRE_PORT"
  log "ready after $(since "$t0") (pid $pid, stomp://$HOST:$STOMP_PORT user $AMQ_USER, tcp://$HOST:$OPENWIRE_PORT)"
}

cmd_stop() {
  local t0 pid
  t0="$(now_us)"
  if ! pid="$(broker_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping broker pid $pid (SIGTERM: the shutdown hook stops the connectors and closes KahaDB) ..."
  kill -TERM "$pid" 2>/dev/null || true
  wait_exit "$pid" "$STOP_TIMEOUT" broker "the next start recovers KahaDB from its journal"
  rm -f "$PID_FILE"
  log "stopped in $(since "$t0")"
}

cmd_status() {
  local pid
  if pid="$(broker_pid)"; then
    STOMP_REPLY=""
    if stomp_ready; then
      log "running: pid $pid, ActiveMQ $(amq_version), stomp://$HOST:$STOMP_PORT, tcp://$HOST:$OPENWIRE_PORT"
      return 0
    fi
    log "process $pid is alive but STOMP does not answer CONNECT on $HOST:$STOMP_PORT (reply: '${STOMP_REPLY:-none}'; starting, or stuck: try $0 restart)"
    return 1
  fi
  log "stopped"
  return 3
}

broker_main "$@"
