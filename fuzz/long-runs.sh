#!/usr/bin/env bash
# Coverage-guided runs under libFuzzer, one target at a time, each for SECS seconds, at
# nice 19 so that they only take idle CPU. Prints one table row per target from libFuzzer's
# final stats: fuzzing seconds, executions, cov and ft (libFuzzer's last status line), the
# slowest input, and whether it stopped on a finding. From the repository root:
#
#   fuzz/long-runs.sh [SECS] [TARGET...]      # default: 600 s, every target
#   fuzz/long-runs.sh --report [TARGET...]    # the rows again, from the last runs' logs
#
# Needs nightly and cargo-fuzz. New inputs go to fuzz/libfuzzer/runs/<target>, findings to
# fuzz/libfuzzer/artifacts/<target>/, logs to fuzz/libfuzzer/logs/<target>.log (all ignored
# by git). Targets that reach cobble-server (auth, server_config, pebble_config, eab,
# key_change, profile) build with the `server` feature. Each run resumes from what earlier
# runs grew (fuzz/libfuzzer/runs/<target>) and the committed corpus; fuzz/merge-runs.sh
# folds the new inputs into the latter, minimized.
# COBBLE_FUZZ_TARGET_DIR picks another target directory (default fuzz/libfuzzer/target),
# e.g. to build the server targets while the others run; COBBLE_FUZZ_SERVER=1 builds every
# target with the `server` feature, so that one build serves them all. Memory is limited
# to 256 MiB.
#
# libFuzzer's -timeout is wall-clock time, and at nice 19 on a busy machine a process can
# wait seconds for a core, so the runs allow 10 s per input; the slowest input's time is
# reported (`slowest`, whole seconds), and the stable driver (`cargo test -p cobble-fuzz`)
# holds every input to 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
report_only=false
if [ "${1:-}" = "--report" ]; then
    report_only=true
    shift
    secs=0
else
    secs=${1:-600}
    shift || true
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/libfuzzer/fuzz_targets/*.rs; do
        t=$(basename "$f" .rs)
        targets+=("$t")
    done
fi
mkdir -p fuzz/libfuzzer/logs
row() {
    local t=$1 log=$2 result=$3
    local took execs last cov ft slowest
    took=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE '[0-9]+ second' | grep -oE '[0-9]+' || echo '?')
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo '?')
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo '?')
    slowest=$(grep -oE 'stat::slowest_unit_time_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    if [ "$result" = "" ]; then
        result=$(grep -m1 -oE 'Test unit written to .*' "$log" || echo "no finding")
    fi
    echo "| \`$t\` | $took | $execs | $cov | $ft | $slowest | $result |"
}
echo "| target | seconds | executions | cov | ft | slowest | result |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for t in "${targets[@]}"; do
    log="fuzz/libfuzzer/logs/$t.log"
    if $report_only; then
        row "$t" "$log" ""
        continue
    fi
    features=()
    case "$t" in auth | server_config | pebble_config | eab | key_change | profile) features=(--features server) ;; esac
    if [ -n "${COBBLE_FUZZ_SERVER:-}" ]; then features=(--features server); fi
    mkdir -p "fuzz/libfuzzer/runs/$t"
    result=""
    if ! nice -n 19 cargo +nightly fuzz run -s none "${features[@]}" \
        --fuzz-dir fuzz/libfuzzer --target-dir "${COBBLE_FUZZ_TARGET_DIR:-fuzz/libfuzzer/target}" \
        "$t" "fuzz/libfuzzer/runs/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=256 -malloc_limit_mb=256 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        result="STOPPED: $(grep -m1 -oE 'Test unit written to .*' "$log" || echo "see $log")"
    fi
    row "$t" "$log" "$result"
done
