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
