# Shared by the shell tests of deployment (tests/deploy/*.sh,
# deploy/test-image.sh); sourced, not run.
#   CHECK_OUT=FILE            where a check's output goes (set before the first check)
#   check NAME COMMAND...     runs COMMAND; prints "ok   NAME", or "FAIL NAME" and
#                             the last 40 lines of its output
#   checks_done               prints the tally; returns 1 if any check failed
#   checks_scratch            a scratch directory WORK (CHECK_OUT inside it) and
#                             SERVER_PID: at exit the server (if set) is killed
#                             and WORK removed
#   make_test_certificate DIR one self-signed EC certificate for localhost and
#                             127.0.0.1 (DIR/tls.pem, DIR/tls.key), good as server,
#                             client and CA certificate in tests
checks_passed=0
checks_failed=0
check() {
  local name=$1; shift
  if "$@" >"$CHECK_OUT" 2>&1; then
    checks_passed=$((checks_passed + 1)); echo "ok   $name"
  else
    checks_failed=$((checks_failed + 1)); echo "FAIL $name"; tail -40 "$CHECK_OUT" | sed 's/^/     /'
  fi
}
checks_done() {
  echo "$checks_passed passed, $checks_failed failed"
  [[ $checks_failed -eq 0 ]]
}
make_test_certificate() {
  (cd "$1" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout tls.key -out tls.pem -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null)
}
checks_scratch() {
  WORK=$(mktemp -d)
  CHECK_OUT="$WORK/out"
  SERVER_PID=
  trap 'if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -9 "$SERVER_PID"; fi
        rm -rf "$WORK"' EXIT
}
