#!/usr/bin/env bash
# The image test (.ci/run runs it after `make test`): builds the Dockerfile of
# this checkout with a private Docker engine and runs the image for real.
#   1. Starts its own dockerd (Debian's docker.io) that leaves the host's
#      network alone (--iptables=false --ip-forward=false --bridge=none).
#   2. Makes the base images debian:12 and debian:12-slim from Debian's
#      archive with mmdebstrap if the engine does not have them (no registry
#      is reachable), then builds the image (--network=host for apt).
#   3. Runs it on loopback ports of the host network and checks over the real
#      port: health SERVING, the demo tables, a lookup, a table created and a
#      push applied; a new container on the same volume still has both; the
#      server runs as uid 10001; `docker stop` exits 0 within seconds and the
#      server exits 0; the HEALTHCHECK turns healthy (through the health-only
#      port, also with TLS on the main port, and following EMBEDSERVE_ADDRESS
#      when there is no health port); 0.0.0.0 without TLS is refused.
#   4. Brings deploy/compose.yaml up and down once.
# Cleans up what it started (containers, volumes, the daemon, its mounts),
# also on failure, and checks that the host's network settings are as they
# were. Images and the build cache stay in the engine's data root
# (EMBEDSERVE_DOCKER_ROOT, default /var/lib/embedserve-ci/docker) so that the
# next run reuses them. Reports the build time and the image size.
#   deploy/test-image.sh [BUILD_DIR]     (BUILD_DIR: where embedctl is; default build)
# Needs root (dockerd) and deploy/install-deps.sh --image.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
CTL_BIN="$BUILD/client/embedctl"
DOCKER=/usr/bin/docker  # Debian's client (a newer one may stand first on PATH)
COMPOSE=/usr/bin/docker-compose
DATA_ROOT=${EMBEDSERVE_DOCKER_ROOT:-/var/lib/embedserve-ci/docker}
IMAGE=embedserve:latest

if [[ $(id -u) -ne 0 ]]; then
  echo "test-image: needs root to run dockerd" >&2; exit 1
fi
for tool in /usr/sbin/dockerd "$DOCKER" "$COMPOSE" /usr/bin/mmdebstrap; do
  [[ -x "$tool" ]] || { echo "test-image: $tool missing: run deploy/install-deps.sh --image" >&2; exit 1; }
done

RUN=$(mktemp -d /tmp/embedserve-image-test.XXXXXX)
TAG=eit$$
export DOCKER_HOST="unix://$RUN/docker.sock"
DOCKERD_PID=
source "$ROOT/deploy/checks.sh"
CHECK_OUT="$RUN/out"
log() { echo "test-image: $*"; }

# The host's network settings, to compare at the end.
net_state() {
  sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.forwarding 2>/dev/null || true
  ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort
  if command -v nft >/dev/null; then nft list ruleset 2>/dev/null || true; fi
  if command -v iptables-save >/dev/null; then iptables-save 2>/dev/null | grep -v '^#' || true; fi
}
net_state > "$RUN/net.before"

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    $COMPOSE -p "$TAG" -f "$ROOT/deploy/compose.yaml" down -v --timeout 10 >/dev/null 2>&1
    local ids
    ids=$($DOCKER ps -aq --filter "label=embedserve-image-test=$TAG")
    [[ -n "$ids" ]] && $DOCKER rm -f $ids >/dev/null 2>&1
    ids=$($DOCKER volume ls -q --filter "label=embedserve-image-test=$TAG")
    [[ -n "$ids" ]] && $DOCKER volume rm -f $ids >/dev/null 2>&1
    $DOCKER image prune -f >/dev/null 2>&1  # dangling layers of earlier builds
    kill -TERM "$DOCKERD_PID"
    for _ in $(seq 1 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
  fi
  # Shims of a killed daemon, then whatever it left mounted.
  pkill -f "containerd-shim.*$RUN" 2>/dev/null
  pkill -f "containerd.*$RUN" 2>/dev/null
  findmnt -rn -o TARGET | grep -E "^($RUN|$DATA_ROOT)" | sort -r | while read -r m; do
    umount -l "$m"
  done
  net_state > "$RUN/net.after"
  if ! diff -u "$RUN/net.before" "$RUN/net.after"; then
    echo "FAIL the host's network settings changed (above)"; rc=1
  fi
  rm -rf "$RUN"
  exit $rc
}
trap cleanup EXIT

# --- 1. A private engine.
mkdir -p "$DATA_ROOT"
/usr/sbin/dockerd --data-root "$DATA_ROOT" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
  -H "$DOCKER_HOST" --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
  >"$RUN/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 150); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.2; done
if ! $DOCKER version >/dev/null 2>&1; then
  tail -20 "$RUN/dockerd.log"; echo "test-image: dockerd did not start" >&2; exit 1
fi
log "dockerd $($DOCKER version -f '{{.Server.Version}}') (pid $DOCKERD_PID, data root $DATA_ROOT)"

# --- 2. Base images from Debian's archive, with this machine's apt sources.
make_base() {  # make_base TAG [dpkg path-exclude options...]
  local tag=$1; shift
  local sources=/etc/apt/sources.list.d/debian.sources
  [[ -f $sources ]] || sources=/etc/apt/sources.list
  local aptopts=()
  for f in /etc/apt/apt.conf.d/99*; do [[ -f $f ]] && aptopts+=(--aptopt="$f"); done
  local start=$SECONDS
  mmdebstrap --variant=minbase --quiet --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    "${aptopts[@]}" "$@" bookworm "$RUN/base.tar" "$sources" >"$RUN/mmdebstrap.log" 2>&1 ||
    { tail -30 "$RUN/mmdebstrap.log"; echo "test-image: mmdebstrap failed" >&2; return 1; }
  $DOCKER import "$RUN/base.tar" "$tag" >/dev/null
  rm -f "$RUN/base.tar"
  log "made $tag with mmdebstrap in $((SECONDS - start)) s"
}
$DOCKER image inspect debian:12 >/dev/null 2>&1 || make_base debian:12
$DOCKER image inspect debian:12-slim >/dev/null 2>&1 || make_base debian:12-slim \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'

# --- 3. The image.
start=$SECONDS
if ! DOCKER_BUILDKIT=1 $DOCKER build --network=host -t "$IMAGE" "$ROOT" >"$RUN/build.log" 2>&1; then
  tail -40 "$RUN/build.log"; echo "test-image: docker build failed" >&2; exit 1
fi
BUILD_S=$((SECONDS - start))
SIZE_MB=$(( $($DOCKER image inspect -f '{{.Size}}' "$IMAGE") / 1000000 ))
log "built $IMAGE in $BUILD_S s; image size $SIZE_MB MB"

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
health_status() { $DOCKER inspect -f '{{.State.Health.Status}}' "$1"; }
wait_healthy() {  # wait_healthy CONTAINER SECONDS
  for _ in $(seq 1 $(($2 * 2))); do
    [[ $(health_status "$1") == healthy ]] && return 0
    [[ $($DOCKER inspect -f '{{.State.Running}}' "$1") == true ]] || break
    sleep 0.5
  done
  echo "health: $(health_status "$1")"; $DOCKER inspect -f '{{json .State.Health}}' "$1"
  $DOCKER logs "$1" 2>&1 | tail -20
  return 1
}
wait_serving() {  # wait_serving ADDRESS: embedctl health answers SERVING (up to 30 s)
  for _ in $(seq 1 60); do
    "$CTL_BIN" --address="$1" --timeout=1 health 2>/dev/null | grep -qx SERVING && return 0
    sleep 0.5
  done
  return 1
}
VOLUME=embedserve-data-$TAG
$DOCKER volume create --label "embedserve-image-test=$TAG" "$VOLUME" >/dev/null
PORT=$(free_port)
HEALTH_PORT=$(free_port)
ADDR=127.0.0.1:$PORT
CTL=("$CTL_BIN" "--address=$ADDR" --timeout=10)
run_server() {  # run_server NAME [docker run options...] [-- server args...]: the image on the volume
  local name=$1; shift
  local opts=()
  while [[ $# -gt 0 && $1 != -- ]]; do opts+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  $DOCKER run -d --name "$name" --label "embedserve-image-test=$TAG" --network host \
    -v "$VOLUME:/var/lib/embedserve/data" -e EMBEDSERVE_ADDRESS="$ADDR" \
    -e EMBEDSERVE_HEALTH_ADDRESS="127.0.0.1:$HEALTH_PORT" "${opts[@]}" "$IMAGE" "$@" >/dev/null
}

run_server "$TAG-a"
check "the server answers health SERVING on its port" wait_serving "$ADDR"
check "the demo tables are listed" bash -c "
  out=\$(\"\$@\" list) && grep -q '^user  *100000  *64' <<<\"\$out\" && grep -q '^item  *50000  *64' <<<\"\$out\"" \
  _ "${CTL[@]}"
check "a lookup is answered" bash -c "\"\$@\" lookup user --ids=0,5 | grep -q 'shape \[2, 64\]'" _ "${CTL[@]}"
check "a table is created and a push applied" bash -c "
  \"\$@\" create trained --num=5 --dim=2 --init=constant --value=1 --optimizer=sgd --lr=0.5 >/dev/null &&
  \"\$@\" push trained --ids=3 --grads=1,-2 | grep -q 'applied 1 rows' &&
  \"\$@\" lookup trained --ids=3 | grep -q 'row 0 (id 3): \[0.5, 2\]'" _ "${CTL[@]}"
check "the server runs as uid 10001, not root" bash -c "
  pid=\$($DOCKER inspect -f '{{.State.Pid}}' $TAG-a) && [[ \$(stat -c %u /proc/\$pid) == 10001 ]] &&
  [[ \$($DOCKER exec $TAG-a id -u) == 10001 ]]"
check "the HEALTHCHECK turns healthy (image defaults: 10 s interval)" wait_healthy "$TAG-a" 40
check "docker stop returns 0 within 10 s and the server exits 0" bash -c "
  start=\$(date +%s.%N); $DOCKER stop -t 20 $TAG-a >/dev/null && end=\$(date +%s.%N) &&
  echo \"stopped in \$(echo \"\$end - \$start\" | bc) s\" &&
  (( \$(echo \"\$end - \$start < 10\" | bc) )) &&
  [[ \$($DOCKER inspect -f '{{.State.ExitCode}}' $TAG-a) == 0 ]] &&
  $DOCKER logs $TAG-a 2>&1 | grep -q 'stopped'"
grep -o 'stopped in [0-9.]* s' "$RUN/out" | sed 's/^/test-image: docker stop: /' || true
$DOCKER rm "$TAG-a" >/dev/null

# A new container on the same volume: the table and the push are still there.
run_server "$TAG-b"
check "a new container on the volume serves again" wait_serving "$ADDR"
check "the table and the push survived the restart" bash -c "
  \"\$@\" lookup trained --ids=3 | grep -q 'row 0 (id 3): \[0.5, 2\]' &&
  \"\$@\" describe trained | grep -q 'version  *1'" _ "${CTL[@]}"
$DOCKER rm -f "$TAG-b" >/dev/null

# TLS and tokens on the main port: the HEALTHCHECK still works through the
# plaintext health-only port.
mkdir -p "$RUN/secrets"
make_test_certificate "$RUN/secrets"
TOKEN=$(openssl rand -hex 32)
echo "admin $TOKEN image-test" > "$RUN/secrets/tokens"
echo "$TOKEN" > "$RUN/token"
chmod 0644 "$RUN/secrets/"*  # readable by uid 10001 in the container
# This container also runs under the Kubernetes pod's constraints
# (deploy/k8s/statefulset.yaml: read-only root file system with /tmp as the
# only scratch, no capabilities, no privilege escalation) and with its args.
mapfile -t K8S_ARGS < <(/usr/bin/python3 -c '
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "StatefulSet":
        print("\n".join(doc["spec"]["template"]["spec"]["containers"][0].get("args", [])))
' "$ROOT/deploy/k8s/statefulset.yaml")
check "the StatefulSet's server args were read" test "${#K8S_ARGS[@]}" -gt 0
run_server "$TAG-tls" -v "$RUN/secrets:/secrets:ro" -e EMBEDSERVE_TLS_CERT=/secrets/tls.pem \
  -e EMBEDSERVE_TLS_KEY=/secrets/tls.key -e EMBEDSERVE_TOKENS_FILE=/secrets/tokens \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  --health-interval=1s -- "${K8S_ARGS[@]}"
check "TLS on the main port: the HEALTHCHECK turns healthy" wait_healthy "$TAG-tls" 30
check "TLS, pod constraints and args: a client with the CA and token lists the tables" bash -c "
  '$CTL_BIN' --address=$ADDR --timeout=10 --tls_ca='$RUN/secrets/tls.pem' \
    --token_file='$RUN/token' list | grep -q '^trained '"
$DOCKER rm -f "$TAG-tls" >/dev/null

# No health port: the HEALTHCHECK follows EMBEDSERVE_ADDRESS (another port).
ADDR2=127.0.0.1:$(free_port)
$DOCKER run -d --name "$TAG-addr" --label "embedserve-image-test=$TAG" --network host \
  -e EMBEDSERVE_ADDRESS="$ADDR2" -e EMBEDSERVE_HEALTH_ADDRESS= -e EMBEDSERVE_DATA_DIR= \
  --health-interval=1s "$IMAGE" >/dev/null
check "no health port: the HEALTHCHECK follows EMBEDSERVE_ADDRESS" wait_healthy "$TAG-addr" 30
$DOCKER rm -f "$TAG-addr" >/dev/null

# Secure by default: the image's own address (0.0.0.0) without TLS and
# tokens does not start (in its own network namespace: nothing is exposed).
check "0.0.0.0 without TLS and tokens is refused (exit 2, says how to fix)" bash -c "
  out=\$($DOCKER run --rm --label embedserve-image-test=$TAG --network none $IMAGE 2>&1); rc=\$?
  [[ \$rc -eq 2 ]] && grep -q 'EMBEDSERVE_INSECURE=1' <<<\"\$out\""

# --- 4. Compose: up, healthy, answers, down.
CPORT=$(free_port)
export EMBEDSERVE_IMAGE=$IMAGE EMBEDSERVE_ADDRESS=127.0.0.1:$CPORT \
  EMBEDSERVE_HEALTH_ADDRESS=127.0.0.1:$(free_port) EMBEDSERVE_METRICS_ADDRESS=127.0.0.1:$(free_port)
check "compose up" $COMPOSE -p "$TAG" -f "$ROOT/deploy/compose.yaml" up -d --no-build
CID=$($COMPOSE -p "$TAG" -f "$ROOT/deploy/compose.yaml" ps -q embedserve 2>/dev/null || true)
check "compose: the service turns healthy and lists the demo tables" bash -c "
  [[ -n '$CID' ]] && for i in \$(seq 1 80); do
    [[ \$($DOCKER inspect -f '{{.State.Health.Status}}' '$CID') == healthy ]] && break; sleep 0.5
  done && [[ \$($DOCKER inspect -f '{{.State.Health.Status}}' '$CID') == healthy ]] &&
  '$CTL_BIN' --address=127.0.0.1:$CPORT --timeout=10 list | grep -q '^user '"
check "compose: metrics are served" bash -c "
  /usr/bin/python3 -c \"import urllib.request,sys; b=urllib.request.urlopen('http://$EMBEDSERVE_METRICS_ADDRESS/metrics', timeout=5).read().decode(); sys.exit(0 if 'embedserve_build_info' in b else 1)\""
check "compose down (and its volume)" $COMPOSE -p "$TAG" -f "$ROOT/deploy/compose.yaml" down -v --timeout 20
check "compose left no container or volume" bash -c "
  [[ -z \$($DOCKER ps -aq --filter label=com.docker.compose.project=$TAG) ]] &&
  ! $DOCKER volume ls -q | grep -q '^${TAG}_'"

log "build ${BUILD_S} s, image ${SIZE_MB} MB"
checks_done
