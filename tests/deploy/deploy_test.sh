#!/usr/bin/env bash
# The deployment path without Docker (deploy/test-image.sh runs the image):
# the build stage's package list, the container entrypoint,
# the HEALTHCHECK command, and the README's embedctl examples against a real
# server process on 127.0.0.1 (a free port).
#   tests/deploy/deploy_test.sh BUILD_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
CTL_BIN="$BUILD/client/embedctl"
source "$ROOT/deploy/checks.sh"
checks_scratch  # WORK, SERVER_PID (killed at exit), CHECK_OUT
contains() { grep -q -- "$1" "$WORK/out"; }

# 1. On a machine that built embedserve, the image build stage's package
# list is all present, so the script must not need apt (it would fail on a
# misspelt name). The runtime image gets its libraries from the .deb's
# Depends (tests/deploy/install_test.sh, deploy/test-image.sh).
check "install-deps --package names real packages" \
  bash -c "bash '$ROOT/deploy/install-deps.sh' --package | grep -q 'all .* packages present'"
# Every shared library embedserve needs is owned by an installed package.
check "runtime libraries resolve" bash -c "! ldd '$BUILD/server/embedserve' | grep -q 'not found'"
# The files the Dockerfile copies exist.
for f in $(sed -n 's/^COPY \(deploy\/[^ ]*\) .*/\1/p' "$ROOT/Dockerfile"); do
  check "Dockerfile source $f exists" test -f "$ROOT/$f"
done

# 2. The container entrypoint starts the demo tables.
EMBEDSERVE_BIN_DIR="$BUILD/server" EMBEDSERVE_ADDRESS=127.0.0.1:0 \
  EMBEDSERVE_CONFIG="$ROOT/deploy/demo_tables.txtpb" EMBEDSERVE_DATA_DIR="$WORK/data" \
  bash "$ROOT/deploy/docker-entrypoint.sh" --port_file="$WORK/port" --load_dir="$WORK" \
  2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
check "entrypoint serves" test -s "$WORK/port"
CTL=("$CTL_BIN" "--address=127.0.0.1:$(cat "$WORK/port")" --timeout=10)

# 3. HEALTHCHECK and the README examples.
# The image's HEALTHCHECK script follows EMBEDSERVE_ADDRESS when no health
# port is set, on loopback for a wildcard host; a wrong port fails it.
PORT=$(cat "$WORK/port")
check "healthcheck script follows EMBEDSERVE_ADDRESS" env PATH="$BUILD/client:$PATH" \
  EMBEDSERVE_ADDRESS="0.0.0.0:$PORT" EMBEDSERVE_HEALTH_ADDRESS= sh "$ROOT/deploy/healthcheck.sh"
check "healthcheck script fails on a port nobody serves" bash -c "
  ! env PATH='$BUILD/client:$PATH' EMBEDSERVE_ADDRESS=127.0.0.1:1 EMBEDSERVE_HEALTH_ADDRESS= \
    sh '$ROOT/deploy/healthcheck.sh'"
check "embedctl list" bash -c "\"\$@\" list > '$WORK/out' && grep -q '^user  *100000  *64' '$WORK/out' && grep -q '^item  *50000  *64' '$WORK/out'" _ "${CTL[@]}"
check "embedctl describe user" bash -c "\"\$@\" describe user | grep -q 'padding_idx     0'" _ "${CTL[@]}"
check "embedctl lookup" bash -c "\"\$@\" lookup user --ids=0,1,2 > '$WORK/out' && grep -q 'shape \[3, 64\]' '$WORK/out' && grep -q 'row 0 (id 0): \[0, 0, 0' '$WORK/out'" _ "${CTL[@]}"
check "embedctl lookup --output=float16" bash -c "\"\$@\" create half --num=2 --dim=3 --init=constant --value=0.1 >/dev/null &&
  \"\$@\" lookup half --ids=1 --output=float16 | grep -q 'row 0 (id 1): \[0.0999756, 0.0999756, 0.0999756\]' &&
  \"\$@\" lookup half --ids=1 | grep -q 'row 0 (id 1): \[0.1, 0.1, 0.1\]' &&
  { \"\$@\" lookup half --ids=1 --output=bf16 2>/dev/null; [[ \$? -eq 2 ]]; }" _ "${CTL[@]}"
check "embedctl lookup-pooled" bash -c "\"\$@\" lookup-pooled item --ids=1,2,3,4 --offsets=0,2 --mode=mean | grep -q 'shape \[2, 64\]'" _ "${CTL[@]}"
check "embedctl create + assign + lookup" bash -c "
  \"\$@\" create demo --num=10 --dim=3 --padding_idx=-1 --init=zeros >/dev/null &&
  \"\$@\" assign demo --ids=9 --values=0.5,1.5,2.5 | grep -q 'version 1' &&
  \"\$@\" lookup demo --ids=9,0 --shape=2 | grep -q 'row 0 (id 9): \[0.5, 1.5, 2.5\]'" _ "${CTL[@]}"
check "embedctl push + state + freeze" bash -c "
  \"\$@\" create trained --num=5 --dim=2 --init=constant --value=1 --optimizer=adagrad --lr=0.5 >/dev/null &&
  \"\$@\" push trained --ids=1,1,4 --grads=1,1,1,1,2,2 | grep -q 'applied 2 rows' &&
  \"\$@\" state trained --ids=1 | grep -q 'row 0 (id 1): \[4, 4\]' &&
  \"\$@\" lookup trained --ids=1 | grep -q 'row 0 (id 1): \[0.5, 0.5\]' &&
  \"\$@\" update trained --set_frozen=true | grep -q 'frozen          yes' &&
  ! \"\$@\" push trained --ids=1 --grads=1,1 2>&1 | grep -vq FAILED_PRECONDITION" _ "${CTL[@]}"
printf "3 2\nking 0.5 1.5\nqueen 2 3\nman 4 5\n" > "$WORK/vectors.txt"
check "embedctl load + lookup --words" bash -c "
  \"\$@\" load wv --path=vectors.txt --format=word2vec_text | grep -q 'loaded table wv' &&
  \"\$@\" lookup wv --words=queen,king | grep -q 'queen: \[2, 3\]' &&
  ! \"\$@\" lookup wv --words=prince 2>&1 | grep -vq \"NOT_FOUND.*'prince'\"" _ "${CTL[@]}"
check "embedctl export + import + checkpoints" bash -c "
  \"\$@\" export user --out='$WORK/user.npy' 2>'$WORK/progress' | grep -q 'exported 100000 rows' &&
  grep -q 'export user: 100000/100000 rows (100%)' '$WORK/progress' &&
  \"\$@\" import user_copy --path='$WORK/user.npy' 2>/dev/null | grep -q 'imported table user_copy' &&
  \"\$@\" lookup user_copy --ids=3 | grep -qF \"\$(\"\$@\" lookup user --ids=3 | tail -1)\" &&
  \"\$@\" checkpoint create cp1 | grep -q 'created checkpoint cp1' &&
  \"\$@\" assign user_copy --ids=3 --values=\$(printf '1,%.0s' {1..63})1 >/dev/null &&
  \"\$@\" checkpoint list | grep -q '^cp1 ' &&
  \"\$@\" checkpoint restore cp1 --tables=user_copy | grep -q 'restored user_copy (version 0)' &&
  \"\$@\" lookup user_copy --ids=3 | grep -qF \"\$(\"\$@\" lookup user --ids=3 | tail -1)\"" _ "${CTL[@]}"
check "embedctl bad id exits 1 naming the id" bash -c "
  out=\$(\"\$@\" lookup user --ids=1,100000 2>&1); rc=\$?
  [[ \$rc -eq 1 ]] && grep -q 'INVALID_ARGUMENT: .*id 100000 at position 1' <<<\"\$out\"" _ "${CTL[@]}"
check "embedctl unknown table exits 1" bash -c "
  out=\$(\"\$@\" describe nope 2>&1); rc=\$?; [[ \$rc -eq 1 ]] && grep -q NOT_FOUND <<<\"\$out\"" _ "${CTL[@]}"
check "embedctl usage error exits 2" bash -c "\"\$@\" frobnicate x; [[ \$? -eq 2 ]]" _ "${CTL[@]}"
check "embedctl --help" bash -c "'$CTL_BIN' --help 2>&1 | grep -q 'lookup-pooled TABLE'"
check "embedserve --help" bash -c "'$BUILD/server/embedserve' --help 2>&1 | grep -q -- '--max_ids_per_request'"

# 4. SIGTERM stops it cleanly.
kill -TERM "$SERVER_PID"
check "SIGTERM exits 0" wait "$SERVER_PID"
SERVER_PID=
check "server log says it stopped" grep -q "I stopped" "$WORK/server.log"

# 5. Secure by default: the container's non-loopback address without TLS
# and tokens does not start and says how to fix it; EMBEDSERVE_INSECURE=1,
# or TLS and tokens from the entrypoint's variables, start it.
printf 'tables { name: "tiny" num_embeddings: 4 embedding_dim: 2 }\n' > "$WORK/tiny.txtpb"
ENTRY=(env EMBEDSERVE_BIN_DIR="$BUILD/server" EMBEDSERVE_ADDRESS=0.0.0.0:0
       EMBEDSERVE_CONFIG="$WORK/tiny.txtpb" EMBEDSERVE_DATA_DIR="$WORK/data2"
       bash "$ROOT/deploy/docker-entrypoint.sh" --port_file="$WORK/port2")
start_entry() {  # start_entry VAR=VALUE...: the entrypoint in the background
  rm -f "$WORK/port2"
  env "$@" "${ENTRY[@]}" 2>"$WORK/server2.log" &
  SERVER_PID=$!
  for _ in $(seq 1 300); do [[ -s "$WORK/port2" ]] && break; sleep 0.05; done
  test -s "$WORK/port2"
}
stop_entry() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; SERVER_PID=; }
check "0.0.0.0 without TLS and tokens refused, both fixes shown" bash -c "
  \"\$@\" 2>'$WORK/refusal'; [[ \$? -eq 2 ]] &&
  grep -q 'docker run -p 50051:50051 -e EMBEDSERVE_INSECURE=1 embedserve' '$WORK/refusal' &&
  grep -q 'EMBEDSERVE_TLS_CERT=.*EMBEDSERVE_TLS_KEY=' '$WORK/refusal' &&
  grep -q 'EMBEDSERVE_TOKENS_FILE=' '$WORK/refusal'" _ "${ENTRY[@]}"
check "the server itself refuses too (flags past the entrypoint)" bash -c "
  '$BUILD/server/embedserve' --address=0.0.0.0:0 --data_dir= 2>&1 | grep -q 'pass --insecure'"
if start_entry EMBEDSERVE_INSECURE=1; then
  check "EMBEDSERVE_INSECURE=1 serves on 0.0.0.0" bash -c "
    '$CTL_BIN' --address=127.0.0.1:\$(cat '$WORK/port2') list | grep -q '^tiny '"
  stop_entry
else
  check "EMBEDSERVE_INSECURE=1 serves on 0.0.0.0" cat "$WORK/server2.log"
fi
# One self-signed certificate serves as the server's, the client's and
# both CAs; a tokens file with a reader.
make_test_certificate "$WORK"
TOKEN=$(openssl rand -hex 32)
echo "reader $TOKEN deploy-test" > "$WORK/tokens"
echo "$TOKEN" > "$WORK/reader.token"
if start_entry EMBEDSERVE_TLS_CERT="$WORK/tls.pem" EMBEDSERVE_TLS_KEY="$WORK/tls.key" \
     EMBEDSERVE_TLS_CLIENT_CA="$WORK/tls.pem" EMBEDSERVE_TOKENS_FILE="$WORK/tokens" \
     EMBEDSERVE_LOAD_DIR="$WORK"; then
  SECURE=("$CTL_BIN" "--address=127.0.0.1:$(cat "$WORK/port2")" --timeout=5
          --tls_ca="$WORK/tls.pem" --tls_cert="$WORK/tls.pem" --tls_key="$WORK/tls.key")
  check "TLS + tokens from the entrypoint's variables" bash -c "
    \"\$@\" --token_file='$WORK/reader.token' list | grep -q '^tiny ' &&
    { out=\$(\"\$@\" list 2>&1); [[ \$? -eq 1 ]] && grep -q UNAUTHENTICATED <<<\"\$out\"; } &&
    { out=\$(\"\$@\" --token_file='$WORK/reader.token' load x --path=vectors.txt \
        --format=word2vec_text 2>&1); [[ \$? -eq 1 ]] &&
      grep -q \"PERMISSION_DENIED: role 'reader' (deploy-test) may not call LoadTable\" <<<\"\$out\"; }" \
    _ "${SECURE[@]}"
  check "EMBEDSERVE_TLS_CLIENT_CA asks for a client certificate" bash -c "
    out=\$('$CTL_BIN' --address=127.0.0.1:\$(cat '$WORK/port2') --timeout=5 \
      --tls_ca='$WORK/tls.pem' --token_file='$WORK/reader.token' list 2>&1)
    [[ \$? -eq 1 ]] && grep -q UNAVAILABLE <<<\"\$out\""
  check "server log names the security settings" grep -q \
    "security: TLS with client certificates, tokens required, LoadTable beneath $WORK" \
    "$WORK/server2.log"
  check "the token is not in the server log" bash -c "! grep -q '$TOKEN' '$WORK/server2.log'"
  stop_entry
else
  check "TLS + tokens from the entrypoint's variables" cat "$WORK/server2.log"
fi

checks_done
