#!/usr/bin/env bash
# Packs what the AVX-512 / many-core checks need into carry/device (git-
# ignored): the test and benchmark binaries, the server, embedbench, and
# every shared library they load except the C/C++ runtime (libc, libm,
# libstdc++, libgcc_s, ld-linux), which the device machine has. Then:
#   run(command="bash bench/device/run.sh", carry=["carry/device"])
# (the device tool of this workplace; see bench/device/run.sh).
#   bench/device/pack.sh [BUILD_DIR]
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST="$ROOT/carry/device"
rm -rf "$DEST"
mkdir -p "$DEST"
BINS=(tests/gather_test tests/parallel_lookup_test tests/embedding_table_test
      bench/gather_bench bench/embedbench bench/echo_server server/embedserve)
for b in "${BINS[@]}"; do cp "$BUILD/$b" "$DEST/"; done
for b in "${BINS[@]}"; do ldd "$BUILD/$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$DEST/"; done
du -sh "$DEST" | awk '{print "carry/device: " $1}'
