#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30), one after another,
# on a copy of the committed corpus; fails if any target finds a crash, a
# hang (an input taking over 10 s) or a leak of memory over 2 GiB.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]
#
# env: WORK (where the growing corpus is kept; default a temporary folder),
#      JOBS (targets run at once, default 1).
# Needs nightly Rust and cargo-fuzz (`cargo install cargo-fuzz`).
# A crash leaves its input in fuzz/artifacts/<target>/; copy it to
# fuzz/regressions/<target>/ once fixed, so `cargo test` replays it.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cd fuzz_targets && ls -- *.rs | sed 's/\.rs$//')
WORK=${WORK:-$(mktemp -d)}
JOBS=${JOBS:-1}

cargo +nightly fuzz build -O >/dev/null 2>&1 || cargo +nightly fuzz build -O

run_one() {
    local t=$1
    mkdir -p "$WORK/$t"
    cp -n corpus/"$t"/* "$WORK/$t"/ 2>/dev/null || true
    if cargo +nightly fuzz run -O "$t" "$WORK/$t" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 >"$WORK/$t.log" 2>&1; then
        echo "$t: ok, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/$t.log" | grep -o '[0-9]*$') runs, corpus $(ls "$WORK/$t" | wc -l)"
    else
        echo "$t: FAILED (log: $WORK/$t.log)"
        grep -m5 -E 'panicked|ERROR|SUMMARY|Test unit written' "$WORK/$t.log" || true
        return 1
    fi
}

failed=0
running=0
for t in "${TARGETS[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed
