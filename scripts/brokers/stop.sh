#!/usr/bin/env bash
# pnpm brokers:stop [rabbitmq|kafka|activemq|sqs …] — stop brokers started by brokers:start.
set -euo pipefail
cd "$(dirname "$0")"
brokers=("$@"); [ ${#brokers[@]} -eq 0 ] && brokers=(rabbitmq kafka activemq sqs)
for b in "${brokers[@]}"; do bash "$b.sh" stop; done
