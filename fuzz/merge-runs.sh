#!/usr/bin/env bash
# Folds what the libFuzzer runs grew (fuzz/libfuzzer/runs/<target>, ignored by git) into the
# committed corpus (fuzz/corpus/<target>), minimized with libFuzzer's `-merge=1`: the
# hand-made seeds (named for what they are) always stay; the grown inputs, committed ones
# and new ones alike, are merged afresh and kept (named by the SHA-1 of their content) only
# when they reach coverage features the seeds and the inputs kept before them do not.
# From the repository root, after `fuzz/long-runs.sh`:
#
#   fuzz/merge-runs.sh [TARGET...]      # default: every target
#
# So that the committed corpus stays small (and `cargo test -p cobble-fuzz`, which runs
# every input, fast), a target keeps at most COBBLE_FUZZ_MAX_GROWN grown inputs (1000):
# past that the merge counts edges only (`-use_counters=0`, libFuzzer's `cov` rather than
# `ft`), and if that is still too many it keeps the first ones by name, a uniform sample
# since names are hashes. Prints one line per target. Needs nightly and cargo-fuzz, like
# long-runs.sh. COBBLE_FUZZ_SERVER=1 builds every target with the `server` feature, as
# long-runs.sh does with it, so that one build serves them all.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/libfuzzer/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi
tdir=${COBBLE_FUZZ_TARGET_DIR:-fuzz/libfuzzer/target}
max=${COBBLE_FUZZ_MAX_GROWN:-1000}
mkdir -p fuzz/libfuzzer/logs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grown() { find "$1" -type f -regextype egrep -regex '.*/[0-9a-f]{40}'; }
bytes() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
for t in "${targets[@]}"; do
    features=()
    case "$t" in auth | server_config | pebble_config | eab | key_change | profile) features=(--features server) ;; esac
    if [ -n "${COBBLE_FUZZ_SERVER:-}" ]; then features=(--features server); fi
    c=fuzz/corpus/$t
    if [ ! -d "fuzz/libfuzzer/runs/$t" ]; then
        echo "$t: no run directory, nothing to merge"
        continue
    fi
    nice -n 19 cargo +nightly fuzz build -s none "${features[@]}" \
        --fuzz-dir fuzz/libfuzzer --target-dir "$tdir" "$t" >/dev/null 2>&1
    n0=$(find "$c" -type f | wc -l) b0=$(bytes "$c")
    # Candidates: the committed grown inputs and the run directory's.
    rm -rf "$tmp/cand" && mkdir -p "$tmp/cand"
    grown "$c" | xargs -r cp -t "$tmp/cand"
    find "fuzz/libfuzzer/runs/$t" -type f -exec cp -f -t "$tmp/cand" {} +
    how="-merge=1"
    for counters in 1 0; do
        # The hand-made seeds first, so that only what they miss is added.
        rm -rf "$tmp/out" && mkdir -p "$tmp/out"
        find "$c" -type f -regextype egrep ! -regex '.*/[0-9a-f]{40}' -exec cp -t "$tmp/out" {} +
        nice -n 19 "$tdir/x86_64-unknown-linux-gnu/release/$t" -merge=1 \
            -use_counters="$counters" -rss_limit_mb=256 -malloc_limit_mb=256 -timeout=10 \
            "$tmp/out" "$tmp/cand" >"fuzz/libfuzzer/logs/$t.merge.log" 2>&1
        [ "$(grown "$tmp/out" | wc -l)" -le "$max" ] && break
        how="-merge=1 -use_counters=0"
    done
    all=$(grown "$tmp/out" | wc -l)
    grown "$c" | xargs -r rm -f
    grown "$tmp/out" | sort | sed -n "1,${max}p" | xargs -r cp -t "$c"
    kept=$(grown "$c" | wc -l)
    note=""
    [ "$kept" -lt "$all" ] && note=", a sample of $all"
    echo "$t: $n0 inputs ($b0 bytes) -> $(find "$c" -type f | wc -l) inputs ($(bytes "$c") bytes): $kept grown ($how$note)"
done
