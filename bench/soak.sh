#!/usr/bin/env bash
# Bounded soak: starts abacus (math agent, SQLite in a fresh temporary data
# directory), runs bench/soak.py's mixed load against it for DURATION seconds
# (SendMessage, SendStreamingMessage, GetTask, CancelTask, WebSocket /stream;
# repeated and unique questions), samples the server's RSS and open fds every
# 10 s, prints a row per sample, totals per kind and the criteria, and exits
# non-zero when the soak fails them.
#
#   bench/soak.sh                      # 10 minutes
#   DURATION=60 bench/soak.sh          # a short trial
#
# Needs curl and Python >= 3.11 with aiohttp:
#   python3 -m venv .venv && .venv/bin/pip install aiohttp && PYTHON=.venv/bin/python bench/soak.sh
#
# The server runs with its defaults except the response cache's capacity:
# CACHE_CAPACITY (1000; the default is 10 000) lets the unique questions fill
# the cache within the warm-up, so growth after it is not the cache filling.
#
# env: DURATION (600 s), RATE (200 jobs/s), WORKERS (16), PORT (8103), CACHE_CAPACITY (1000),
#      ABACUS_BIN (default target/release/abacus, built with cargo only if missing),
#      SERVER_CPU / LOAD_CPU (both 0: pinned with taskset when it exists; LOAD_CPU=
#      leaves the load generator unpinned), PYTHON (python3),
#      SERVER_ARGS (extra `serve` flags), SOAK_ARGS (extra soak.py flags).
# The server inherits the environment (a build without the `mimalloc` feature
# uses glibc's malloc: MALLOC_ARENA_MAX=1 bounds its per-thread arenas).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DURATION=${DURATION:-600}
RATE=${RATE:-200}
WORKERS=${WORKERS:-16}
PORT=${PORT:-8103}
PYTHON=${PYTHON:-python3}
CACHE_CAPACITY=${CACHE_CAPACITY:-1000}
SERVER_CPU=${SERVER_CPU-0}
LOAD_CPU=${LOAD_CPU-0}

command -v curl >/dev/null || { echo "soak: needs curl" >&2; exit 2; }
"$PYTHON" -c 'import sys, aiohttp; assert sys.version_info >= (3, 11)' 2>/dev/null || {
    echo "soak: needs Python >= 3.11 with aiohttp:" >&2
    echo "  python3 -m venv .venv && .venv/bin/pip install aiohttp && PYTHON=.venv/bin/python $0" >&2
    exit 2
}

BIN=${ABACUS_BIN:-$ROOT/target/release/abacus}
if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build --release --bin abacus) || exit 2
fi

PIN_SERVER=(); PIN_LOAD=()
if command -v taskset >/dev/null; then
    [ -n "$SERVER_CPU" ] && PIN_SERVER=(taskset -c "$SERVER_CPU")
    [ -n "$LOAD_CPU" ] && PIN_LOAD=(taskset -c "$LOAD_CPU")
fi

DATA=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID"; wait "$PID" 2>/dev/null
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
"${PIN_SERVER[@]}" "$BIN" serve --port "$PORT" --data-dir "$DATA" --log-format json \
    --cache-capacity "$CACHE_CAPACITY" ${SERVER_ARGS:-} \
    >"$DATA/server.log" 2>&1 &
PID=$!
URL="http://127.0.0.1:$PORT/"
for _ in $(seq 1 100); do curl -sf -o /dev/null "${URL}health" && break; sleep 0.1; done
curl -sf -o /dev/null "${URL}health" || { echo "soak: the server did not start" >&2; cat "$DATA/server.log" >&2; exit 2; }
echo "# server: $BIN (pid $PID${PIN_SERVER:+, ${PIN_SERVER[*]}}), --cache-capacity $CACHE_CAPACITY, $(nproc) cores, fresh data dir"

# shellcheck disable=SC2086 # SOAK_ARGS is a list of flags
"${PIN_LOAD[@]}" "$PYTHON" "$HERE/soak.py" --url "$URL" --pid "$PID" --duration "$DURATION" \
    --rate "$RATE" --workers "$WORKERS" ${SOAK_ARGS:-}
rc=$?

# The server must have survived, and logged no error or panic.
if ! kill -0 "$PID" 2>/dev/null; then
    echo "FAIL: the server exited during the soak" >&2; tail -20 "$DATA/server.log" >&2; exit 1
fi
errors=$(grep -c -e '"level":"ERROR"' -e 'panicked' "$DATA/server.log")
warnings=$(grep -c '"level":"WARN"' "$DATA/server.log")
echo "server log: $errors error/panic lines, $warnings warnings"
grep -m 5 -e '"level":"ERROR"' -e 'panicked' -e '"level":"WARN"' "$DATA/server.log" | cut -c1-300
if [ "$errors" -gt 0 ]; then
    echo "FAIL: the server logged errors" >&2; rc=1
fi
echo "database: $(du -sh "$DATA" | cut -f1) in the data dir"

# Every client is gone: the server must stop at once, not after its drain timeout.
t0=$(date +%s%N)
kill "$PID"; wait "$PID" 2>/dev/null; status=$?
PID=""
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "server stopped in $ms ms (exit status $status)"
if [ "$status" -ne 0 ] || [ "$ms" -gt 5000 ]; then
    echo "FAIL: the server did not stop cleanly" >&2; rc=1
fi
[ "$rc" -eq 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit "$rc"
