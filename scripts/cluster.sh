#!/usr/bin/env bash
# Several processes on one machine, run the way README "Several processes" says:
# a throwaway PostgreSQL and broker, two `vip serve`, two `vip streams run`,
# simulated upstream traffic, then the same query answered from the embedded
# views and from the stream workers' store. Everything is removed at the end.
#   bash scripts/cluster.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
vip=.venv/bin/vip
work="$(mktemp -d)"
logs="$work/logs"
mkdir -p "$logs"
apps=() infra=()
stop() { # stop PID...: TERM them all, then wait for each
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
    # The serves and workers first: a serve stopping flushes to PostgreSQL, which must still be up.
    stop "${apps[@]}"
    stop "${infra[@]}"
    rm -rf "$work"
}
trap cleanup EXIT
await() {  # await FILE TEXT SECONDS: until a process's log shows TEXT
    for _ in $(seq 1 $(( $3 * 5 ))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "cluster: '$2' did not show in $1:" >&2; tail -20 "$1" >&2; exit 1
}

export VIP_DATA_DIR="$work/data" VIP_TOPIC_PREFIX=cluster
"$vip" postgres >"$logs/postgres.log" 2>&1 & infra+=($!)
port="$(.venv/bin/python -c 'from infra.dev.broker import free_port; print(free_port())')"
"$vip" broker --port "$port" --no-topics >"$logs/broker.log" 2>&1 & infra+=($!)
await "$logs/postgres.log" "^export VIP_EVENT_STORE" 60
await "$logs/broker.log" "^export VIP_KAFKA_BOOTSTRAP" 60
eval "$(grep '^export' "$logs/postgres.log" "$logs/broker.log" | cut -d: -f2-)"
echo "cluster: PostgreSQL $VIP_EVENT_STORE, broker $VIP_KAFKA_BOOTSTRAP"

"$vip" topics create
for n in 1 2; do
    "$vip" serve >"$logs/serve$n.log" 2>&1 & apps+=($!)
    "$vip" streams run >"$logs/worker$n.log" 2>&1 & apps+=($!)
done
for n in 1 2; do await "$logs/serve$n.log" "^serve: " 120; done
echo "cluster: 2 serve and 2 streams workers running; publishing upstream traffic"
"$vip" produce crm --count 300 --members 100 --rate 0
"$vip" produce orders --count 1500 --members 100 --rate 0

for _ in $(seq 1 90); do
    embedded="$("$vip" tiers --json 2>/dev/null || true)"
    streams="$(VIP_QUERY_VIEWS=streams "$vip" tiers --json 2>/dev/null || true)"
    if [ -n "$embedded" ] && [ "$embedded" != "[]" ] && [ "$embedded" = "$streams" ]; then
        members="$(.venv/bin/python -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$embedded")"
        echo "cluster: vip tiers gives the same $members members from the embedded views and from the workers' store"
        VIP_QUERY_VIEWS=streams "$vip" tiers >"$logs/tiers.txt"
        head -8 "$logs/tiers.txt"   # (not a pipe: head closing it early would fail the script)
        exit 0
    fi
    sleep 2
done
echo "cluster: the two stores did not agree within 3 minutes; logs:" >&2
tail -n 5 "$logs"/*.log >&2
exit 1
