#!/usr/bin/env bash
# Install, start, stop and restart a local RabbitMQ (Debian's `rabbitmq-server`) for msgkit's
# broker tests. No Docker, no systemd: the node is started with `rabbitmq-server -detached` and
# stopped with `rabbitmqctl shutdown`, then `epmd -kill`.
#
#   scripts/brokers/rabbitmq.sh install|start|stop|status|restart
#
# Every subcommand is idempotent: `start` on a running node only checks it, `stop` on a stopped
# node only cleans up. The node listens on 127.0.0.1 only (AMQP 5672, distribution 25672, epmd
# 4369); guest/guest works from localhost. Data stays in /var/lib/rabbitmq/mnesia between runs
# (Debian's default): tests must use unique queue/exchange names and delete what they create.
# Logs: /var/log/rabbitmq (linked from .brokers/rabbitmq/logs); start output in
# .brokers/rabbitmq/start.out.
#
# Environment (all optional):
#   RABBITMQ_NODE_PORT       AMQP port (default 5672)
#   RABBITMQ_READY_TIMEOUT   seconds to wait for the node to boot (default 60)
#   RABBITMQ_STOP_TIMEOUT    seconds to wait for the node to stop before SIGKILL (default 30)
set -euo pipefail

PROG="rabbitmq.sh"
NODE_HOST="$(hostname -s 2>/dev/null || uname -n)"
NODE_HOST="${NODE_HOST%%.*}"
export RABBITMQ_NODENAME="rabbit@${NODE_HOST}"
export RABBITMQ_NODE_IP_ADDRESS="127.0.0.1"
export RABBITMQ_NODE_PORT="${RABBITMQ_NODE_PORT:-5672}"
# Keep epmd and the Erlang distribution port on loopback too.
export ERL_EPMD_ADDRESS="127.0.0.1"
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
READY_TIMEOUT="${RABBITMQ_READY_TIMEOUT:-60}"
STOP_TIMEOUT="${RABBITMQ_STOP_TIMEOUT:-30}"
MNESIA_BASE="/var/lib/rabbitmq/mnesia"
PID_FILE="${MNESIA_BASE}/${RABBITMQ_NODENAME}.pid"
LOG_DIR="/var/log/rabbitmq"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"
STATE_DIR="${MSGKIT_BROKERS_DIR:-$(cd "$SCRIPT_DIR/../.." && pwd)/.brokers}/rabbitmq"
# The Debian wrappers cd to /var/lib/rabbitmq; run from / so a deleted cwd never bites.
cd /

# ---------------------------------------------------------------------------------------------

node_pid() { # prints the node's OS pid when its beam process is alive
  local pid
  [ -r "$PID_FILE" ] || return 1
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [ -n "$pid" ] || return 1
  alive "$pid" || return 1
  grep -q beam "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

epmd_cleanup() {
  # rabbitmqctl and the node start epmd, which outlives them. `epmd -kill` refuses while any
  # Erlang node is still registered, so this never breaks another running node.
  command -v epmd >/dev/null 2>&1 || return 0
  if port_open 4369; then
    if as_root epmd -kill >/dev/null 2>&1; then
      log "epmd stopped"
    else
      log "epmd left running: other Erlang nodes are registered ($(epmd -names 2>/dev/null | tail -n +2 | tr '\n' ' '))"
    fi
  fi
}

show_logs() {
  local f
  for f in "$LOG_DIR/${RABBITMQ_NODENAME}.log" "$LOG_DIR/startup_err" "$LOG_DIR/startup_log"; do
    if [ -s "$f" ]; then
      printf '[%s] --- last lines of %s ---\n' "$PROG" "$f" >&2
      tail -n 25 "$f" >&2 || true
    fi
  done
}

launch_node() {
  # Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user with `su`, whose pam_limits
  # drops the open-files limit to 1024 (PID 1's). With a few hundred durable/quorum queues left by
  # earlier test runs the node then runs out of file handles and `rabbitmqctl shutdown` hangs
  # forever (msg_store waits on file_handle_cache). So: raise the limit, switch user with setpriv
  # (no PAM), and let the wrapper take its rabbitmq-user branch.
  local nofile
  nofile="$(ulimit -Hn)"
  [ "$nofile" = unlimited ] && nofile=65536
  [ "$nofile" -gt 65536 ] && nofile=65536
  ulimit -n "$nofile" 2>/dev/null || true
  if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    cd /var/lib/rabbitmq
    HOME=/var/lib/rabbitmq USER=rabbitmq LOGNAME=rabbitmq \
      setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups rabbitmq-server -detached
  else
    as_root rabbitmq-server -detached
  fi
}

# ---------------------------------------------------------------------------------------------
cmd_install() {
  if dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q 'install ok installed' &&
    command -v rabbitmqctl >/dev/null 2>&1; then
    log "rabbitmq-server already installed ($(dpkg-query -W -f='${Version}' rabbitmq-server))"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "rabbitmq-server is missing and apt-get is not available" \
      "install RabbitMQ 3.x yourself, or use docker compose up rabbitmq (docker-compose.yml)"
  local t0
  t0="$(now_us)"
  export DEBIAN_FRONTEND=noninteractive
  log "installing rabbitmq-server with apt-get ..."
  if ! as_root apt-get install -y --no-install-recommends rabbitmq-server; then
    log "apt-get install failed; running apt-get update and retrying ..."
    as_root apt-get update ||
      die "apt-get update failed" "check the network/proxy to the Debian mirrors, then re-run: $0 install"
    as_root apt-get install -y --no-install-recommends rabbitmq-server ||
      die "apt-get install rabbitmq-server failed" "apt-cache policy rabbitmq-server" \
        "dpkg --configure -a && $0 install"
  fi
  # apt may try to start the service (blocked on our machines): stop a node it did start so that
  # `start` runs it with our settings (loopback only).
  if node_pid >/dev/null; then
    log "apt started a node; stopping it so that $PROG controls it"
    cmd_stop
  fi
  log "rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server) installed in $(since "$t0")"
}

ensure_guest() {
  # guest/guest is Debian's default user; recreate it if a previous run changed/removed it.
  if as_root rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1; then
    log "guest/guest authenticates"
  else
    log "guest/guest does not authenticate: (re)creating the guest user"
    as_root rabbitmqctl -q add_user guest guest >/dev/null 2>&1 ||
      as_root rabbitmqctl -q change_password guest guest >/dev/null
    as_root rabbitmqctl -q set_user_tags guest administrator >/dev/null
  fi
  as_root rabbitmqctl -q set_permissions -p / guest '.*' '.*' '.*' >/dev/null ||
    die "could not grant guest permissions on vhost /" "rabbitmqctl list_vhosts; rabbitmqctl list_users"
}

cmd_start() {
  local t0 pid
  t0="$(now_us)"
  command -v rabbitmq-server >/dev/null 2>&1 || cmd_install

  if pid="$(node_pid)"; then
    log "already running (node ${RABBITMQ_NODENAME}, pid ${pid}); checking it is ready ..."
  else
    [ -e "$PID_FILE" ] && { log "removing stale pid file $PID_FILE"; as_root rm -f "$PID_FILE"; }
    if port_open "$RABBITMQ_NODE_PORT"; then
      die "port 127.0.0.1:${RABBITMQ_NODE_PORT} is taken by another process, and no RabbitMQ node of ours runs" \
        "ss -ltnp | grep ':${RABBITMQ_NODE_PORT}' to find it; stop it (or docker compose down), then re-run: $0 start"
    fi
    log "starting node ${RABBITMQ_NODENAME} on 127.0.0.1:${RABBITMQ_NODE_PORT} (rabbitmq-server -detached) ..."
    mkdir -p "$STATE_DIR"
    # The node logs to Debian's $LOG_DIR; a link puts them beside the other brokers' logs.
    [ -e "$STATE_DIR/logs" ] || ln -s "$LOG_DIR" "$STATE_DIR/logs" 2>/dev/null || true
    if ! (close_inherited_fds && launch_node) </dev/null >"$STATE_DIR/start.out" 2>&1; then
      cat "$STATE_DIR/start.out" >&2
      show_logs
      die "rabbitmq-server -detached failed (output above)" "look at $LOG_DIR/startup_err" "$0 stop && $0 start"
    fi
  fi

  log "waiting up to ${READY_TIMEOUT} s for the node to boot (rabbitmqctl wait) ..."
  if ! as_root timeout "$((READY_TIMEOUT + 10))" rabbitmqctl wait --timeout "$READY_TIMEOUT" "$PID_FILE" >/dev/null 2>&1; then
    show_logs
    die "RabbitMQ did not become ready within ${READY_TIMEOUT} s" \
      "read $LOG_DIR/${RABBITMQ_NODENAME}.log (errors above)" \
      "a node name clash or stale lock: $0 stop && $0 start" \
      "disk full? df -h /var/lib/rabbitmq"
  fi
  local waited=0
  until port_open "$RABBITMQ_NODE_PORT"; do
    [ "$waited" -ge 100 ] && die "the node booted but nothing listens on 127.0.0.1:${RABBITMQ_NODE_PORT}" \
      "rabbitmq-diagnostics listeners" "check RABBITMQ_NODE_PORT / /etc/rabbitmq/rabbitmq.conf"
    sleep 0.1
    waited=$((waited + 1))
  done
  log "ready after $(since "$t0") (pid $(node_pid || echo '?'), amqp://guest:guest@127.0.0.1:${RABBITMQ_NODE_PORT})"
  ensure_guest
}

cmd_stop() {
  local t0 pid
  t0="$(now_us)"
  if ! pid="$(node_pid)"; then
    log "not running"
    [ -e "$PID_FILE" ] && as_root rm -f "$PID_FILE"
    epmd_cleanup
    return 0
  fi
  log "stopping node ${RABBITMQ_NODENAME} (pid ${pid}) with rabbitmqctl shutdown ..."
  local out
  if ! out="$(as_root timeout "$((STOP_TIMEOUT + 5))" rabbitmqctl shutdown --timeout "$STOP_TIMEOUT" 2>&1)"; then
    log "rabbitmqctl shutdown failed or timed out: $(printf '%s' "$out" | grep -v '^\s*$' | tail -n 3 | tr '\n' ' ')"
    log "sending SIGTERM to pid ${pid}"
    as_root kill -TERM "$pid" 2>/dev/null || true
  fi
  wait_exit "$pid" "$STOP_TIMEOUT" "node ${RABBITMQ_NODENAME}"
  as_root rm -f "$PID_FILE"
  epmd_cleanup
  log "stopped in $(since "$t0")"
}

cmd_status() {
  local pid
  if pid="$(node_pid)"; then
    if as_root rabbitmqctl -q ping >/dev/null 2>&1; then
      log "running: node ${RABBITMQ_NODENAME}, pid ${pid}, amqp 127.0.0.1:${RABBITMQ_NODE_PORT} $(port_open "$RABBITMQ_NODE_PORT" && echo open || echo CLOSED)"
      return 0
    fi
    log "process ${pid} is alive but the node does not answer (booting, or stuck: try $0 restart)"
    return 1
  fi
  log "stopped"
  return 3
}

broker_main "$@"
