#!/usr/bin/env bash
# Reproduce the README's benchmark table on your machine.
#
#   bench/run.sh                    # builds and starts `abacus` (release), measures, stops it
#   bench/run.sh http://HOST:PORT/  # measures a server that is already running
#
# Scenarios (wrk, loopback only; the server pinned to CPU $SERVER_CPU, wrk to $LOAD_CPU
# when taskset exists and the script starts the server itself):
#   send_c1         SendMessage "2 + 2", 1 connection          (latency)
#   send_c64        SendMessage "2 + 2", 64 connections        (cache on: hits)
#   send_unique_c64 SendMessage "{n} + 1" (new question each time: cache misses)
#   stream_c16      SendStreamingMessage "2 + 2", 16 connections (task: status, artifact, status)
#   card_c64        GET /.well-known/agent-card.json, 64 connections
# Prints one row per scenario and the server's RSS after the load.
# env: DURATION (seconds per scenario, default 10), SERVER_CPU (1), LOAD_CPU (0), PORT (8102)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DURATION=${DURATION:-10}
PORT=${PORT:-8102}
command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install wrk)" >&2; exit 2; }

URL=${1:-}
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; true; }
trap cleanup EXIT
PIN_SERVER=(); PIN_LOAD=()
if [ -z "$URL" ]; then
    (cd "$ROOT" && cargo build --release --bin abacus >/dev/null)
    DATA=$(mktemp -d)
    if command -v taskset >/dev/null; then
        PIN_SERVER=(taskset -c "${SERVER_CPU:-1}"); PIN_LOAD=(taskset -c "${LOAD_CPU:-0}")
    fi
    "${PIN_SERVER[@]}" "$ROOT/target/release/abacus" serve --port "$PORT" --data-dir "$DATA" >"$DATA/server.log" 2>&1 &
    PID=$!
    URL="http://127.0.0.1:$PORT/"
    for _ in $(seq 1 100); do curl -sf -o /dev/null "${URL}health" && break; sleep 0.1; done
fi
case "$URL" in http://127.0.0.1*|http://localhost*) ;; *) echo "bench: loopback targets only" >&2; exit 2 ;; esac

run() { # name connections method text stream url
    local out
    out=$(METHOD=$3 TEXT=$4 STREAM=$5 "${PIN_LOAD[@]}" wrk -t "$(( $2 > 1 ? 2 : 1 ))" -c "$2" -d "${DURATION}s" \
        --timeout 5s -s "$HERE/request.lua" "$6" | grep WRKJSON | sed 's/^WRKJSON //')
    python3 - "$1" "$out" <<'PY'
import json, sys
name, d = sys.argv[1], json.loads(sys.argv[2])
print(f"{name:<16} {d['rps']:>10.0f} req/s  p50 {d['p50_ms']:>7.3f} ms  p99 {d['p99_ms']:>7.3f} ms  errors {d['errors']}")
PY
}

echo "# abacus $URL  $(date -u +%FT%TZ)  $(nproc) cores  wrk ${DURATION}s per scenario"
run send_c1 1 POST "2 + 2" 0 "$URL"
run send_c64 64 POST "2 + 2" 0 "$URL"
run send_unique_c64 64 POST "{n} + 1" 0 "$URL"
run stream_c16 16 POST "2 + 2" 1 "$URL"
run card_c64 64 GET "" 0 "${URL}.well-known/agent-card.json"
[ -n "$PID" ] && echo "RSS after load: $(( $(ps -o rss= -p "$PID") / 1024 )) MiB"
