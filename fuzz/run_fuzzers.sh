#!/usr/bin/env bash
# Runs each libFuzzer binary of a -DEMBEDSERVE_FUZZ=ON build for a while over
# a scratch copy of its seed corpus (the committed corpus is never written),
# then prints executions and crashes per target.
#
#   fuzz/run_fuzzers.sh BUILD_DIR SECONDS TARGET...
#
# Artifacts (crash-*, leak-*, timeout-*, oom-*) and each run's log land in
# BUILD_DIR/fuzz-runs/<target>/. Exits 1 if any target found something.
set -uo pipefail

build=${1:?build dir}
seconds=${2:?seconds per target}
shift 2
src=$(cd "$(dirname "$0")" && pwd)

summary=()
failed=0
for t in "$@"; do
  bin="$build/fuzz/$t"
  work="$build/fuzz-runs/$t"
  if [[ ! -x "$bin" ]]; then
    echo "run_fuzzers: $bin is missing (build with -DEMBEDSERVE_FUZZ=ON)" >&2
    exit 2
  fi
  rm -rf "$work"
  mkdir -p "$work/corpus"
  cp "$src/corpus/$t/"* "$work/corpus/"
  echo "== $t: ${seconds}s"
  # -timeout: one input may take at most 10 s; -rss_limit_mb: a load that
  # allocates past 2 GiB is a finding (small inputs must not cause big
  # allocations); -malloc_limit_mb: the same for one allocation;
  # -close_fd_mask=2: the target's own stderr (the service's operator log)
  # is dropped, sanitizer and libFuzzer reports still reach the log.
  "$bin" "$work/corpus" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -close_fd_mask=2 \
    -artifact_prefix="$work/" >"$work/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  [[ -z "$execs" ]] && execs=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p' "$work/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  artifacts=$(find "$work" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  crashes=$(printf '%s' "$artifacts" | grep -c . || true)
  if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
    failed=1
    echo "   FOUND (rc $rc): ${artifacts:-see $work/log}"
    grep -m1 -E '^==[0-9]+==ERROR|runtime error|^SUMMARY' "$work/log" || true
  fi
  summary+=("$(printf '%-18s %14s %10s %8s' "$t" "${execs:-?}" "${rate:-?}" "$crashes")")
done

echo
printf '%-18s %14s %10s %8s\n' target executions exec/s crashes
printf '%s\n' "${summary[@]}"
exit $failed
