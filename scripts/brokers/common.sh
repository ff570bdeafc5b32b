# shellcheck shell=bash
# Shared by the broker scripts (sourced, not run): logging, timing, process checks, the CLI.
# The sourcing script sets PROG and defines cmd_install, cmd_start, cmd_stop and cmd_status.

log() { printf '[%s] %s\n' "$PROG" "$*"; }
die() {
  printf '[%s] ERROR: %s\n' "$PROG" "$1" >&2
  shift
  local hint
  for hint in "$@"; do printf '[%s]   try: %s\n' "$PROG" "$hint" >&2; done
  exit 1
}
now_us() { local t="${EPOCHREALTIME//[.,]/}"; echo "$((10#$t))"; }
since() { # since START_US -> "1.234 s"
  local d=$(($(now_us) - $1))
  printf '%d.%03d s' "$((d / 1000000))" "$(((d / 1000) % 1000))"
}

close_inherited_fds() {
  # Call in the subshell that starts a broker: fds > 2 inherited from the caller (a test runner's
  # pipes) would otherwise stay open in the broker for its whole life, and a caller waiting for
  # EOF on them would hang. 255 is bash's own script fd (close-on-exec anyway).
  local f fd
  for f in "/proc/$BASHPID/fd/"*; do
    fd="${f##*/}"
    if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

alive() { # alive PID -> 0 when the process exists and is not a zombie (PID 1 may reap late)
  local st
  st="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

as_root() { # as_root COMMAND... — run as root (directly, or through sudo keeping the environment)
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -E "$@"
  else
    die "this needs root: $*" "run '$0' as root, or install sudo"
  fi
}

port_open() { # port_open PORT -> 0 when something accepts on ${HOST:-127.0.0.1}:PORT
  (exec 3<>"/dev/tcp/${HOST:-127.0.0.1}/$1") 2>/dev/null
}

pid_from_file() { # pid_from_file FILE PATTERN -> the pid in FILE, when that process lives and its command line matches
  local pid
  [ -r "$1" ] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  [ -n "$pid" ] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$2" || return 1
  echo "$pid"
}

tail_logs() { # tail_logs FILE... — the last non-empty lines of each log that has any, on stderr
  local f
  for f in "$@"; do
    if [ -s "$f" ]; then
      printf '[%s] --- last lines of %s ---\n' "$PROG" "$f" >&2
      grep -v '^\s*$' "$f" | tail -n 25 >&2 || true
    fi
  done
}

apt_install() { # apt_install PACKAGE... (apt-get update first only when the install fails)
  command -v apt-get >/dev/null 2>&1 || die "missing: $* (and no apt-get to install it)" \
    "install $* yourself, or use docker compose (docker-compose.yml)"
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get install $* ..."
  if ! as_root apt-get install -y --no-install-recommends "$@"; then
    log "apt-get install failed; running apt-get update and retrying ..."
    as_root apt-get update || die "apt-get update failed" "check the network/proxy to the Debian mirrors"
    as_root apt-get install -y --no-install-recommends "$@" ||
      die "apt-get install $* failed" "apt-cache policy $*" "dpkg --configure -a && $0 install"
  fi
}

wait_exit() { # wait_exit PID SECONDS WHAT [COST] — wait for PID to exit; after SECONDS, SIGKILL it (COST: what that loses)
  local pid="$1" limit="$2" what="$3" cost="${4:+ ($4)}" waited=0
  while alive "$pid"; do
    if [ "$waited" -ge $((limit * 10)) ]; then
      log "$what (pid $pid) still alive after ${limit} s: SIGKILL$cost"
      kill -KILL "$pid" 2>/dev/null || as_root kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  if alive "$pid"; then die "could not stop $what (pid $pid)" "kill -9 $pid"; fi
}

cmd_restart() {
  local t0
  t0="$(now_us)"
  cmd_stop
  cmd_start
  log "restart took $(since "$t0")"
}

broker_main() {
  case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart) cmd_restart ;;
    *)
      echo "usage: $PROG install|start|stop|status|restart" >&2
      exit 2
      ;;
  esac
}
