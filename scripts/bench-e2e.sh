#!/usr/bin/env bash
# End-to-end throughput and latency, each role in its own process, all on
# 127.0.0.1: one broker, one process serving 2 echo workers (water, 64 requests
# at once each), and `domo bench` driving the load from a third process.
#
#   scripts/bench-e2e.sh [DURATION]        (needs bin/domo: make build)
set -euo pipefail
domo=${DOMO:-bin/domo}
duration=${1:-5s}
port=$((20000 + RANDOM % 20000))
ep=tcp://127.0.0.1:$port

"$domo" broker --listen "$ep" --log-level warn &
broker=$!
"$domo" serve water --replicas 2 --concurrency 64 --broker "$ep" --log-level warn &
workers=$!
trap 'kill -INT $broker $workers 2>/dev/null; wait' EXIT
sleep 1

printf '%-8s %-9s %-6s %s\n' clients inflight bytes result
for spec in "1 1 64" "1 64 64" "8 8 64" "64 1 64" "1 64 4096" "8 8 4096"; do
	read -r clients inflight size <<<"$spec"
	printf '%-8s %-9s %-6s ' "$clients" "$inflight" "$size"
	"$domo" bench --broker "$ep" --workers 0 --method water.echo --clients "$clients" \
		--inflight "$inflight" --size "$size" --duration "$duration" --log-level warn | tail -n 1
done
