#!/usr/bin/env bash
# Compile (once, cached) and run JmsInterop.java: a real JMS client (ActiveMQ's OpenWire client jars
# from Debian's `activemq` package) for msgkit's ActiveMQ interop tests.
#
#   test/interop/jms/run-jms.sh consume --group G --topic T --count N [--timeout-ms MS] [--rollback-first]
#   test/interop/jms/run-jms.sh send --topic T --text 'hi' --prop n=int:1 --group K --bytes-base64 AAE= ...
#   test/interop/jms/run-jms.sh compile        (only compile; prints the class dir)
#
# Output: JSON lines on stdout (see JmsInterop.java). Classes are cached in
# $MSGKIT_BROKERS_DIR/activemq/jms-classes (default <repo>/.brokers), rebuilt when the source, the
# jars or javac change.
#
# Environment: JMS_URL (default tcp://127.0.0.1:${ACTIVEMQ_OPENWIRE_PORT:-61616}), JMS_USER /
# JMS_PASSWORD (default ACTIVEMQ_USER / ACTIVEMQ_PASSWORD, else msgkit/msgkit as written by
# scripts/brokers/activemq.sh; JMS_USER= (empty) connects anonymously), JMS_JAVA_OPTS.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
SRC="$HERE/JmsInterop.java"
OUT="${MSGKIT_BROKERS_DIR:-$REPO_ROOT/.brokers}/activemq/jms-classes"
JARS=(activemq-client geronimo-jms_1.1_spec geronimo-j2ee-management-1.1-spec hawtbuf slf4j-api slf4j-nop)

fail() {
  printf '[run-jms] ERROR: %s\n' "$1" >&2
  shift
  local h
  for h in "$@"; do printf '[run-jms]   try: %s\n' "$h" >&2; done
  exit 1
}

CP=""
for j in "${JARS[@]}"; do
  f="/usr/share/java/$j.jar"
  [ -f "$f" ] || fail "missing $f" "bash scripts/brokers/activemq.sh install (Debian's activemq package brings these jars)" \
    "dpkg -S $f"
  CP="${CP:+$CP:}$f"
done
command -v javac >/dev/null 2>&1 || fail "javac not found" "apt-get install default-jdk-headless"

key() {
  {
    sha256sum "$SRC" | cut -c1-64
    for j in "${JARS[@]}"; do readlink -f "/usr/share/java/$j.jar"; done
    javac -version 2>&1
  } | sha256sum | cut -c1-64
}

compile() {
  local k
  k="$(key)"
  if [ -f "$OUT/.key" ] && [ "$(cat "$OUT/.key")" = "$k" ] && [ -f "$OUT/JmsInterop.class" ]; then
    return 0
  fi
  local tmp
  mkdir -p "$(dirname "$OUT")"
  tmp="$(mktemp -d "$OUT.tmp.XXXXXX")"
  if ! javac -nowarn -encoding UTF-8 --release 11 -cp "$CP" -d "$tmp" "$SRC" >"$tmp/javac.out" 2>&1; then
    cat "$tmp/javac.out" >&2
    rm -rf "$tmp"
    fail "javac failed for $SRC (output above)"
  fi
  echo "$k" >"$tmp/.key"
  # Replace atomically enough for tests started in parallel: whoever renames last wins, same content.
  rm -rf "$OUT.old"
  [ -d "$OUT" ] && mv "$OUT" "$OUT.old"
  mv "$tmp" "$OUT"
  rm -rf "$OUT.old"
  printf '[run-jms] compiled JmsInterop into %s\n' "$OUT" >&2
}

compile
[ "${1:-}" = compile ] && { echo "$OUT"; exit 0; }
[ $# -gt 0 ] || fail "usage: $0 consume|send|compile ARGS… (see JmsInterop.java)"

export JMS_URL="${JMS_URL:-tcp://127.0.0.1:${ACTIVEMQ_OPENWIRE_PORT:-61616}}"
export JMS_USER="${JMS_USER-${ACTIVEMQ_USER:-msgkit}}"
export JMS_PASSWORD="${JMS_PASSWORD-${ACTIVEMQ_PASSWORD:-msgkit}}"
# shellcheck disable=SC2086
exec java -Xshare:auto -XX:TieredStopAtLevel=1 ${JMS_JAVA_OPTS:-} -cp "$OUT:$CP" JmsInterop "$@"
