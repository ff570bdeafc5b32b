#!/usr/bin/env bash
# Install, start, stop and restart a local SQS + SNS compatible server (moto, from PyPI) for
# msgkit's broker tests. No Docker, no Java: moto runs from a Python venv in .brokers/sqs/venv.
#
#   scripts/brokers/sqs.sh install|start|stop|status|restart
#
#   install  create the venv and pip install scripts/brokers/sqs/requirements.txt (moto[sqs,sns]
#            plus flask/flask-cors for server mode); skipped when cached for the same file + Python
#   start    run scripts/brokers/sqs/server.py (moto's WSGI app) in the background (pid file),
#            wait until a real SQS call (ListQueues) and a real SNS call (ListTopics) answer
#   stop     SIGTERM by pid (the server saves its state), wait, SIGKILL after SQS_STOP_TIMEOUT s
#   restart  stop + start, KEEPING queues, topics, subscriptions and messages (in flight too):
#            the server pickles moto's SQS/SNS backends to .brokers/sqs/state.pickle on SIGTERM
#            and loads them at start. A SIGKILL loses what changed since the last graceful stop.
#   status   exit 0 running, 3 stopped, 1 unhealthy
#
# Idempotent: start on a running server only checks it; stop on a stopped server does nothing.
# Listens on 127.0.0.1 only. Clients must pass an explicit endpoint (http://127.0.0.1:PORT),
# region us-east-1 and any credentials (moto does not check signatures); account 123456789012.
# Like the other brokers' data dirs, state is kept between stop and start: tests use unique
# names. To start empty: stop, then delete .brokers/sqs/state.pickle (or set SQS_PERSIST=0).
#
# Environment (all optional):
#   SQS_PORT             HTTP port for SQS and SNS (default 4566)
#   SQS_PERSIST          1 (default): keep state across stop/start; 0: always start empty
#   SQS_PYTHON           Python (>= 3.9) to create the venv with (default python3)
#   SQS_READY_TIMEOUT    seconds to wait for the server to answer (default 30)
#   SQS_STOP_TIMEOUT     seconds to wait for a graceful stop before SIGKILL (default 15)
#   SQS_LOG_REQUESTS     non-empty: log every HTTP request to .brokers/sqs/logs/server.log
#   SQS_MOTO_UNPATCHED   non-empty: run moto without server.py's per-message cost patch (see there)
#   MSGKIT_BROKERS_DIR   state dir (default <repo>/.brokers); with SQS_PORT, lets a second server
#                        run beside the default one
set -euo pipefail

PROG="sqs.sh"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$SCRIPT_DIR/common.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
REQUIREMENTS="$SCRIPT_DIR/sqs/requirements.txt"
SERVER_PY="$SCRIPT_DIR/sqs/server.py"
BROKERS_DIR="${MSGKIT_BROKERS_DIR:-$REPO_ROOT/.brokers}"
SDIR="$BROKERS_DIR/sqs"
VENV="$SDIR/venv"
PY="$VENV/bin/python"
LOGS="$SDIR/logs"
PID_FILE="$SDIR/server.pid"
STATE_FILE="$SDIR/state.pickle"
HOST="127.0.0.1"
PORT="${SQS_PORT:-4566}"
PERSIST="${SQS_PERSIST:-1}"
PYTHON="${SQS_PYTHON:-python3}"
READY_TIMEOUT="${SQS_READY_TIMEOUT:-30}"
STOP_TIMEOUT="${SQS_STOP_TIMEOUT:-15}"

# ---------------------------------------------------------------------------------------------

server_pid() { pid_from_file "$PID_FILE" 'sqs/server\.py serve'; }

show_logs() { tail_logs "$LOGS/server.log"; }

aws_call() { # aws_call SERVICE CONTENT_TYPE BODY [TARGET] -> prints the raw HTTP response
  # One real API call over bash's /dev/tcp (no curl, no Python start-up per poll). moto reads the
  # service from the Authorization header's credential scope and checks no signature.
  local service="$1" ctype="$2" body="$3" target="${4:-}"
  {
    exec 3<>"/dev/tcp/$HOST/$PORT" || return 1
    printf 'POST / HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: %s\r\n%bAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/%s/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
      "$HOST" "$PORT" "$ctype" "${target:+X-Amz-Target: $target\r\n}" "$service" "${#body}" "$body" >&3
    timeout 5 head -c 4096 <&3
    exec 3<&-
  } 2>/dev/null
}

answers() { # a real SQS call (JSON protocol) and a real SNS call (query protocol) both answer
  local r
  port_open "$PORT" || return 1
  r="$(aws_call sqs application/x-amz-json-1.0 '{}' AmazonSQS.ListQueues)"
  grep -q '^Content-Type: application/x-amz-json-1.0' <<<"$r" || return 1
  r="$(aws_call sns application/x-www-form-urlencoded 'Action=ListTopics&Version=2010-03-31')"
  grep -q '<ListTopicsResponse' <<<"$r"
}

moto_version() { # from the installed package's metadata: importing moto takes a second or more
  local d
  d="$(find "$VENV"/lib/python3*/site-packages -maxdepth 1 -name 'moto-*.dist-info' 2>/dev/null | head -n 1)"
  d="${d##*/moto-}"
  echo "${d%.dist-info}"
}

cache_key() { # what the venv was made from
  echo "requirements-sha256=$(sha256sum "$REQUIREMENTS" | cut -c1-64) python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)"
}

venv_ok() { [ -x "$PY" ] && [ -f "$VENV/.complete" ] && [ "$(cat "$VENV/.complete")" = "$(cache_key)" ]; }

# ---------------------------------------------------------------------------------------------
cmd_install() {
  local t0
  t0="$(now_us)"
  command -v "$PYTHON" >/dev/null 2>&1 ||
    die "$PYTHON not found (moto needs Python >= 3.9)" "apt-get install python3 python3-venv" \
      "or point SQS_PYTHON at a Python 3.9+"
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' ||
    die "$("$PYTHON" --version 2>&1) is too old: moto 5.2 needs Python >= 3.9" "set SQS_PYTHON to a newer Python"
  if venv_ok; then
    log "moto $(moto_version) cached in $VENV"
    return 0
  fi
  mkdir -p "$SDIR" "$LOGS"
  rm -rf "$VENV.tmp"
  log "creating a venv with $("$PYTHON" --version 2>&1) in $VENV ..."
  if ! "$PYTHON" -m venv "$VENV.tmp" >"$LOGS/venv.out" 2>&1; then
    # Debian's python3 lacks ensurepip until python3-venv is installed
    if command -v apt-get >/dev/null 2>&1 && [ "$PYTHON" = python3 ]; then
      log "python3 -m venv failed; installing python3-venv with apt-get ..."
      export DEBIAN_FRONTEND=noninteractive
      as_root apt-get install -y --no-install-recommends python3-venv >>"$LOGS/venv.out" 2>&1 ||
        { as_root apt-get update >>"$LOGS/venv.out" 2>&1 &&
          as_root apt-get install -y --no-install-recommends python3-venv >>"$LOGS/venv.out" 2>&1; } ||
        { tail -n 20 "$LOGS/venv.out" >&2; die "apt-get install python3-venv failed" "apt-cache policy python3-venv"; }
      rm -rf "$VENV.tmp"
      "$PYTHON" -m venv "$VENV.tmp" >>"$LOGS/venv.out" 2>&1 ||
        { tail -n 20 "$LOGS/venv.out" >&2; die "$PYTHON -m venv failed (output above)" "$PYTHON -m venv /tmp/v by hand to see why"; }
    else
      tail -n 20 "$LOGS/venv.out" >&2
      die "$PYTHON -m venv failed (output above)" "install the venv module (Debian: python3-venv)"
    fi
  fi
  log "pip install -r $(basename "$REQUIREMENTS") (moto from PyPI) ..."
  if ! "$VENV.tmp/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" >"$LOGS/pip.out" 2>&1; then
    tail -n 30 "$LOGS/pip.out" >&2
    rm -rf "$VENV.tmp"
    die "pip install failed (output above, full log in $LOGS/pip.out)" \
      "check PyPI is reachable: $PYTHON -m pip download --no-deps -d /tmp/x moto==5.2.5" \
      "proxy/index settings: pip config list"
  fi
  cache_key >"$VENV.tmp/.complete"
  rm -rf "$VENV"
  # The venv's console scripts keep the .tmp path in their shebangs after this rename; only
  # "$VENV/bin/python" (server.py, -m pip) is ever run, which does not care.
  mv "$VENV.tmp" "$VENV"
  log "moto $(moto_version) installed in $VENV ($(du -sh "$VENV" | cut -f1)) in $(since "$t0")"
}

cmd_start() {
  local t0 pid
  t0="$(now_us)"
  if pid="$(server_pid)"; then
    log "already running (pid $pid); checking it answers ..."
  else
    venv_ok || cmd_install
    rm -f "$PID_FILE"
    port_open "$PORT" && die "port $HOST:$PORT is taken by another process, and no server of ours runs" \
      "ss -ltnp | grep ':$PORT' to find it; stop it (or docker compose down sqs), then re-run: $0 start" \
      "or run ours on another port: SQS_PORT=4567 $0 start"
    mkdir -p "$LOGS"
    local state_args=()
    if [ "$PERSIST" = 1 ]; then
      state_args=(--state "$STATE_FILE")
    else
      rm -f "$STATE_FILE"
    fi
    log "starting moto $(moto_version) (SQS + SNS) on http://$HOST:$PORT$([ "$PERSIST" = 1 ] && echo ", state in $STATE_FILE") ..."
    echo "=== $(date -Is) start ===" >>"$LOGS/server.log"
    # setsid: the server gets its own session, so it outlives the calling shell/test process
    # group; all of its output goes to a file so a caller reading our stdout never hangs.
    (
      close_inherited_fds
      cd "$SDIR"
      exec setsid "$PY" -u "$SERVER_PY" serve --host "$HOST" --port "$PORT" "${state_args[@]}"
    ) </dev/null >>"$LOGS/server.log" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    log "pid $pid, logs in $LOGS/server.log"
  fi

  log "waiting up to ${READY_TIMEOUT} s for SQS ListQueues and SNS ListTopics to answer ..."
  local deadline=$(($(now_us) + READY_TIMEOUT * 1000000)) n=0
  until answers; do
    if ! alive "$pid"; then
      rm -f "$PID_FILE"
      show_logs
      die "the server exited during startup (logs above)" \
        "read $LOGS/server.log" \
        "port in use: ss -ltnp | grep ':$PORT'" \
        "a broken venv: rm -rf '$VENV' && $0 install"
    fi
    if [ "$(now_us)" -ge "$deadline" ]; then
      show_logs
      die "the server did not answer within ${READY_TIMEOUT} s (process $pid is still running)" \
        "read $LOGS/server.log" "$0 restart" "raise SQS_READY_TIMEOUT on a slow machine"
    fi
    n=$((n + 1))
    [ $((n % 50)) -eq 0 ] && log "  still waiting ($(since "$t0")) ..."
    sleep 0.1
  done
  local rss
  rss="$(awk '/VmRSS/ {printf "%d MB", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo '?')"
  log "ready after $(since "$t0") (pid $pid, rss $rss, endpoint http://$HOST:$PORT, sqs://us-east-1?endpoint=http://$HOST:$PORT)"
}

cmd_stop() {
  local t0 pid
  t0="$(now_us)"
  if ! pid="$(server_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping server pid $pid (SIGTERM$([ "$PERSIST" = 1 ] && echo ': it saves its state first')) ..."
  kill -TERM "$pid" 2>/dev/null || true
  wait_exit "$pid" "$STOP_TIMEOUT" server "state changes since the last stop are lost"
  rm -f "$PID_FILE"
  grep -q 'state NOT saved' <(tail -n 5 "$LOGS/server.log" 2>/dev/null) &&
    log "WARNING: the server could not save its state (see $LOGS/server.log)"
  log "stopped in $(since "$t0")"
}

cmd_status() {
  local pid
  if pid="$(server_pid)"; then
    if answers; then
      log "running: pid $pid, moto $(moto_version), endpoint http://$HOST:$PORT"
      return 0
    fi
    log "process $pid is alive but SQS/SNS do not answer on $HOST:$PORT (starting, or stuck: try $0 restart)"
    return 1
  fi
  log "stopped"
  return 3
}

broker_main "$@"
