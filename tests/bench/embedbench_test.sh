#!/usr/bin/env bash
# embedbench and echo_server work (not how fast): short closed- and open-loop
# runs against real servers on loopback, and a non-loopback target refused.
#   tests/bench/embedbench_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do [[ -s "$1" ]] && break; sleep 0.05; done; cat "$1"; }
passed=0; failed=0
check() { local name=$1; shift; if "$@" >"$WORK/out" 2>&1; then passed=$((passed+1)); echo "ok   $name"; else failed=$((failed+1)); echo "FAIL $name"; sed 's/^/     /' "$WORK/out"; fi; }

"$BUILD/server/embedserve" --address=127.0.0.1:0 --port_file="$WORK/es.port" --data_dir= 2>/dev/null &
PIDS+=($!)
ES=127.0.0.1:$(wait_port "$WORK/es.port")
"$BUILD/bench/echo_server" --address=127.0.0.1:0 --port_file="$WORK/echo.port" &
PIDS+=($!)
ECHO=127.0.0.1:$(wait_port "$WORK/echo.port")
B=("$BUILD/bench/embedbench" --rows=10000 --batch=64 --duration=0.5 --warmup=0.1 --csv="$WORK/r.csv")

check "setup creates the table" "${B[@]}" --target=embedserve --address="$ES" --setup
check "closed loop" bash -c "\"\$@\" --target=embedserve --address=$ES | grep -q 'rows/s'" _ "${B[@]}"
check "open loop, zipf, 20% pushes" "${B[@]}" --target=embedserve --address="$ES" --mode=open --rate=200 --dist=zipf --push_fraction=0.2
check "echo ceiling" "${B[@]}" --target=echo --address="$ECHO"
check "csv has a line per run" bash -c "[[ \$(wc -l < '$WORK/r.csv') -eq 3 ]]"
check "refuses a non-loopback target" bash -c "\"\$@\" --target=embedserve --address=10.0.0.1:50051; [[ \$? -eq 2 ]]" _ "${B[@]}"
check "reports errors (missing table)" bash -c "! \"\$@\" --target=embedserve --address=$ES --table=nope" _ "${B[@]}"
# A window too short for any call (the threads poll for the start every
# millisecond): nothing measured is a failure that says so, not a 0 rows/s.
check "fails when no call was measured" bash -c "out=\$(\"\$@\" --target=embedserve --address=$ES --duration=0.000001 --warmup=0 2>&1); [[ \$? -eq 1 ]] && grep -q 'no request completed' <<<\"\$out\"" _ "${B[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
