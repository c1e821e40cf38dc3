#!/usr/bin/env bash
# Every binding against the physical limit, in one run, on the same core.
#
#   bench/bindings.sh LIMIT_BIN
#
# LIMIT_BIN is the physical-limit server (a bare hyper server answering the
# JSON-RPC SendMessage and SendStreamingMessage of "2 + 2", started as
# `LIMIT_BIN parse PORT`). The script builds `abacus` (release), then in turn
# starts the limit server and abacus pinned to CPU $SERVER_CPU, loads each
# from CPU $LOAD_CPU, and prints one row per scenario with the ratio to the
# limit's figure for the same kind of call:
#
#   limit   send_c64 / stream_c16         JSON-RPC (wrk)
#   abacus  jsonrpc_send_c64 / jsonrpc_stream_c16
#           rest_send_c64 / rest_stream_c16     HTTP+JSON (wrk, bench/request.lua BINDING=rest)
#           grpc_send_c64 / grpc_stream_c16     gRPC (the grpc_load client of benches/)
#
# env: DURATION (seconds per scenario, default 10), SERVER_CPU (1), LOAD_CPU (0), PORT (8102),
#      ABACUS (an abacus binary to measure instead of building one)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
LIMIT=${1:?usage: bench/bindings.sh LIMIT_BIN}
DURATION=${DURATION:-10}
PORT=${PORT:-8102}
command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install wrk)" >&2; exit 2; }
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
[ -n "${ABACUS:-}" ] || (cd "$ROOT" && cargo build --release -q --bin abacus -p abacus)
ABACUS=${ABACUS:-$BIN/abacus}
(cd "$ROOT" && cargo build --release -q -p abacus-benches --bin grpc_load)
PIN_SERVER=(); PIN_LOAD=()
if command -v taskset >/dev/null; then
    PIN_SERVER=(taskset -c "${SERVER_CPU:-1}"); PIN_LOAD=(taskset -c "${LOAD_CPU:-0}")
fi
DATA=$(mktemp -d)
PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; fi; PID=""; }
trap 'stop; rm -rf "$DATA"' EXIT
up() { for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/.well-known/agent-card.json" && return; sleep 0.1; done; echo "server did not start" >&2; exit 2; }

RESULTS=$DATA/results.tsv
wrk_run() { # name connections binding stream
    local out
    out=$(METHOD=POST TEXT="2 + 2" BINDING=$3 STREAM=$4 "${PIN_LOAD[@]}" wrk -t 2 -c "$2" -d "${DURATION}s" \
        --timeout 5s -s "$HERE/request.lua" "http://127.0.0.1:$PORT/" | grep WRKJSON | sed 's/^WRKJSON //')
    python3 -c 'import json, sys; d = json.loads(sys.argv[2]); print("%s\t%.0f\t%.3f\t%d" % (sys.argv[1], d["rps"], d["p99_ms"], d["errors"]))' "$1" "$out" >>"$RESULTS"
}
grpc_run() { # name connections stream
    "${PIN_LOAD[@]}" "$BIN/grpc_load" --url "http://127.0.0.1:$PORT" --concurrency "$2" \
        --duration "$DURATION" ${3:+--stream} | sed "s/^/$1\t/" >>"$RESULTS"
}

"${PIN_SERVER[@]}" "$LIMIT" parse "$PORT" >"$DATA/limit.log" 2>&1 &
PID=$!; up
wrk_run limit_send_c64 64 jsonrpc 0
wrk_run limit_stream_c16 16 jsonrpc 1
stop; sleep 1

"${PIN_SERVER[@]}" "$ABACUS" serve --port "$PORT" --data-dir "$DATA/abacus" >"$DATA/abacus.log" 2>&1 &
PID=$!; up
wrk_run jsonrpc_send_c64 64 jsonrpc 0
wrk_run rest_send_c64 64 rest 0
grpc_run grpc_send_c64 64 ""
wrk_run jsonrpc_stream_c16 16 jsonrpc 1
wrk_run rest_stream_c16 16 rest 1
grpc_run grpc_stream_c16 16 1
stop

echo "# abacus bindings vs the limit  $(date -u +%FT%TZ)  $(nproc) cores  ${DURATION}s per scenario"
python3 - "$RESULTS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {r[0]: r for r in rows}
print(f"{'scenario':<20} {'req/s':>9} {'p99 ms':>8} {'errors':>7} {'x limit':>8}")
for name, rps, p99, errors in rows:
    kind = "stream" if "stream" in name else "send"
    limit = float(by.get(f"limit_{kind}_c{'16' if kind == 'stream' else '64'}", [0, 0])[1] or 0)
    ratio = f"{float(rps) / limit:.2f}" if limit else "-"
    print(f"{name:<20} {float(rps):>9.0f} {float(p99):>8.3f} {errors:>7} {ratio:>8}")
PY
