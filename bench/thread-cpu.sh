#!/usr/bin/env bash
# Per-thread CPU of one server under the bench's load, over a steady window (docs/benchmarks.md,
# "Where the time goes"). Run `npm run bench` once first (it builds dist/ and dist/.bench/).
#
#   bash bench/thread-cpu.sh inlet    # inlet serve on a fresh SQLite file
#   bash bench/thread-cpu.sh bare     # the bare node:http ceiling
#
# wrk runs 12 s (-t1 -c50); each thread's user+system time is sampled at 5 s and 11 s and printed as a
# share of one core. On a machine where threads lose time to the hypervisor, compare a server's event
# loop with bare node:http's thread at its ceiling rather than with 100 %.
set -euo pipefail
kind=${1:-inlet}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=5099
secret="whsec_$(printf 'thread-cpu-bench-secret!' | base64)"

node --input-type=module -e "
  const { writeSignedDeliveries } = await import('$root/dist/.bench/bench/deliveries.js');
  writeSignedDeliveries('$work/requests.txt', 300000, '$secret', 'cpu' + Date.now().toString(36));
"
if [ "$kind" = bare ]; then
  PORT=$port node "$root/dist/.bench/bench/bare-server.js" >/dev/null 2>&1 &
else
  REPLICATE_WEBHOOK_SECRET=$secret node "$root/dist/cli/bin.js" serve --port $port \
    --database "sqlite:$work/inlet.db" --log-format json >"$work/serve.log" 2>&1 &
fi
server=$!
sleep 1.5
INLET_BENCH_REQUESTS="$work/requests.txt" wrk -t1 -c50 -d12s --timeout 5s \
  -s "$root/bench/wrk-deliveries.lua" "http://127.0.0.1:$port/replicate-webhook" >"$work/wrk.out" 2>&1 &
load=$!

snapshot() {
  for task in /proc/$server/task/* /proc/$load/task/*; do
    pid=$(basename "$(dirname "$(dirname "$task")")")
    echo "$pid/$(basename "$task")/$(tr -d ' ' <"$task/comm") $(awk '{print $14 + $15}' "$task/stat")"
  done | sort
}
sleep 5
snapshot >"$work/start"
sleep 6
snapshot >"$work/end"
wait $load
kill -INT $server
wait $server || true

echo "server pid $server, wrk pid $load; share of one core from 5 s to 11 s:"
join "$work/start" "$work/end" | awk '{ share = ($3 - $2) / 6; if (share >= 1) printf "  %-32s %5.1f %%\n", $1, share }'
grep -E 'Requests/sec|Non-2xx' "$work/wrk.out" || true
