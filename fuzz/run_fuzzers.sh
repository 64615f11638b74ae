#!/usr/bin/env bash
# Runs each libFuzzer binary of a -DEMBEDSERVE_FUZZ=ON build for a while over
# a scratch copy of its seed corpus (the committed corpus is never written),
# then prints executions and findings per target.
#
#   fuzz/run_fuzzers.sh BUILD_DIR SECONDS TARGET...
#
# FUZZ_KEEP_GOING=1 (the default) runs libFuzzer in fork mode and goes on
# after a crash, leak, timeout or OOM, so that one known bug (a crasher kept
# in the seed corpus until it is fixed) does not stop the search for others;
# FUZZ_KEEP_GOING=0 stops at the first finding. Artifacts (crash-*, leak-*,
# timeout-*, oom-*) and each run's log land in BUILD_DIR/fuzz-runs/<target>/.
# Columns: executions; artifacts written; of those, how many do not
# reproduce when replayed alone (timeouts from a stalled machine); bugs:
# distinct sanitizer summaries among those that do. Exits 1 if any
# artifact reproduces.
set -uo pipefail

build=${1:?build dir}
seconds=${2:?seconds per target}
shift 2
src=$(cd "$(dirname "$0")" && pwd)
keep_going=${FUZZ_KEEP_GOING:-1}

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
  mode=()
  if [[ "$keep_going" == 1 ]]; then
    mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  echo "== $t: ${seconds}s"
  # -timeout: one input may take at most 10 s; -rss_limit_mb: a run that
  # allocates past 2 GiB is a finding (small inputs must not cause big
  # allocations); -malloc_limit_mb: the same for one allocation;
  # -close_fd_mask=2: the target's own stderr (the service's operator log)
  # is dropped, sanitizer and libFuzzer reports still reach the log.
  "$bin" "$work/corpus" "${mode[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -close_fd_mask=2 \
    -artifact_prefix="$work/" >"$work/log" 2>&1
  rc=$?
  # Executions: the final stats (one process), the last fork-mode status
  # line ("#N: cov: ..."), or the "#N DONE" line.
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  [[ -z "$execs" ]] && execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$work/log" | tail -1)
  [[ -z "$execs" ]] && execs=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p' "$work/log" | tail -1)
  mapfile -t artifacts < <(find "$work" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  # Each artifact is replayed once: what reproduces is a bug (its sanitizer
  # summary line; distinct lines are distinct bugs); a timeout that replays
  # in milliseconds was the machine stalling, not the target.
  bugs=()
  flukes=0
  for a in "${artifacts[@]}"; do
    out=$(UBSAN_OPTIONS=print_stacktrace=1 timeout 60 "$bin" -timeout=10 -close_fd_mask=2 "$a" 2>&1)
    if [[ $? -eq 0 ]]; then
      flukes=$((flukes + 1))
      echo "   $(basename "$a"): does not reproduce ($(grep -o 'in [0-9]* ms' <<<"$out"))"
      continue
    fi
    line=$(grep -m1 -E '^SUMMARY|runtime error|ERROR: libFuzzer' <<<"$out" | sed 's/^.*SUMMARY: //')
    bugs+=("${line:-$(basename "$a"): no summary, see $work/log}")
  done
  distinct=0
  if [[ ${#bugs[@]} -gt 0 ]]; then
    failed=1
    echo "   ${#bugs[@]} artifact(s) reproduce:"
    printf '%s\n' "${bugs[@]}" | sort | uniq -c | sed 's/^/   /'
    distinct=$(printf '%s\n' "${bugs[@]}" | sort -u | wc -l)
  elif [[ $rc -ne 0 && ${#artifacts[@]} -eq 0 ]]; then
    failed=1
    echo "   libFuzzer exited $rc without an artifact: see $work/log"
  fi
  summary+=("$(printf '%-18s %14s %9s %10s %8s' "$t" "${execs:-?}" "${#artifacts[@]}" \
    "$flukes" "$distinct")")
done

echo
printf '%-18s %14s %9s %10s %8s\n' target executions artifacts not-repro bugs
printf '%s\n' "${summary[@]}"
exit $failed
