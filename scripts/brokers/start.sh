#!/usr/bin/env bash
# pnpm brokers:start [rabbitmq|kafka|activemq|sqs …] — install (if needed) and start real brokers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")"
brokers=("$@"); [ ${#brokers[@]} -eq 0 ] && brokers=(rabbitmq kafka activemq sqs)
for b in "${brokers[@]}"; do
  [ -f "$b.sh" ] || { echo "unknown broker '$b' (known: rabbitmq, kafka, activemq, sqs)" >&2; exit 2; }
  bash "$b.sh" install && bash "$b.sh" start
done
