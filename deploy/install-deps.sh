#!/usr/bin/env bash
# Installs the Debian 12 packages embedserve needs to build, test and run.
# Idempotent: packages already installed are skipped, and apt is not touched at
# all when nothing is missing. Runs as root (or through sudo when available).
#
#   deploy/install-deps.sh            build + test dependencies (make test)
#   deploy/install-deps.sh --package  only what building the server, embedctl and
#                                     the .deb packages needs (the image's build stage)
#   deploy/install-deps.sh --image    also Docker, mmdebstrap and docker-compose
#                                     (deploy/test-image.sh, run by .ci/run)
#   deploy/install-deps.sh --bench    also what `make bench` compares against
#   deploy/install-deps.sh --fuzz     also clang and libFuzzer for `make fuzz`
set -euo pipefail

# Compile the installed targets and package them (cpack: dpkg-shlibdeps
# from dpkg-dev, file).
PACKAGE_PKGS=(
  build-essential cmake make pkg-config ccache dpkg-dev file
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev
)
BUILD_PKGS=(
  "${PACKAGE_PKGS[@]}"
  # install_test checks the packaged systemd unit with systemd-analyze.
  systemd
  libgtest-dev libgmock-dev libbenchmark-dev
  # embedbench's Redis client (the benchmark compares against Redis MGET).
  libhiredis-dev
  # The PyTorch oracle for the conformance tests and the benchmark script.
  python3-torch python3-numpy python3-grpcio python3-protobuf
  # python_package_install builds and installs the Python client with pip
  # (setuptools backend, no build isolation, nothing downloaded).
  python3-pip python3-setuptools python3-wheel
  # The security tests make their certificates with the openssl CLI.
  openssl
  # The metrics test checks a scrape with promtool and queries a real prometheus.
  prometheus
  # tests/deploy/k8s_manifests_test.py loads the manifests into the Kubernetes models.
  python3-kubernetes python3-yaml
)
# What the binaries need at run time is not listed here: the embedserve .deb
# declares it (dpkg-shlibdeps), and the image installs that .deb.
# A private Docker engine, base images made from Debian's archive, compose.
IMAGE_PKGS=(docker.io mmdebstrap docker-compose)

BENCH_PKGS=(redis-server gnuplot-nox bc linux-perf)
# clang-14 with libFuzzer (-fsanitize=fuzzer) and the ASan/UBSan runtimes.
FUZZ_PKGS=(clang libfuzzer-14-dev)

if [[ "${1:-}" == "--package" ]]; then
  PKGS=("${PACKAGE_PKGS[@]}")
elif [[ "${1:-}" == "--image" ]]; then
  PKGS=("${BUILD_PKGS[@]}" "${IMAGE_PKGS[@]}")
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
