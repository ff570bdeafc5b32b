#!/usr/bin/env bash
# pnpm brokers:stop [rabbitmq|kafka …] — stop brokers started by brokers:start.
set -euo pipefail
cd "$(dirname "$0")"
brokers=("$@"); [ ${#brokers[@]} -eq 0 ] && brokers=(rabbitmq kafka)
for b in "${brokers[@]}"; do bash "$b.sh" stop; done
