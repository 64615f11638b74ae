#!/usr/bin/env bash
# Installs the Debian 12 packages embedserve needs to build, test and run.
# Idempotent: packages already installed are skipped, and apt is not touched at
# all when nothing is missing. Runs as root (or through sudo when available).
#
#   deploy/install-deps.sh            build + test + runtime dependencies
#   deploy/install-deps.sh --runtime  only what the server binary needs to run
#   deploy/install-deps.sh --bench    also what `make bench` compares against
#   deploy/install-deps.sh --fuzz     also clang and libFuzzer for `make fuzz`
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake make pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # embedbench's Redis client (the benchmark compares against Redis MGET).
  libhiredis-dev
  # The PyTorch oracle for the conformance tests and the benchmark script.
  python3-torch python3-numpy python3-grpcio python3-protobuf
  # The security tests make their certificates with the openssl CLI.
  openssl
  # The metrics test checks a scrape with promtool and queries a real prometheus.
  prometheus
)
# What the embedserve and embedctl binaries link (the Dockerfile's runtime
# stage); tests/deploy/deploy_test.sh checks these names against the build.
RUNTIME_PKGS=(
  libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623
)

BENCH_PKGS=(redis-server gnuplot-nox bc linux-perf)
# clang-14 with libFuzzer (-fsanitize=fuzzer) and the ASan/UBSan runtimes.
FUZZ_PKGS=(clang libfuzzer-14-dev)

if [[ "${1:-}" == "--runtime" ]]; then
  PKGS=("${RUNTIME_PKGS[@]}")
elif [[ "${1:-}" == "--bench" ]]; then
  PKGS=("${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}")
elif [[ "${1:-}" == "--fuzz" ]]; then
  PKGS=("${BUILD_PKGS[@]}" "${FUZZ_PKGS[@]}")
else
  PKGS=("${BUILD_PKGS[@]}")
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
