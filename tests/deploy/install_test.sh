#!/usr/bin/env bash
# The install rules and the Debian packages, against the real thing:
#  1. `cmake --install --component client` into a private prefix; a project
#     outside this tree (tests/deploy/consumer) finds it with
#     find_package(embedserve CONFIG), a second build uses only pkg-config,
#     and both look a row up on a real server (127.0.0.1, free port).
#  2. cpack builds both .deb files; the server package's Depends name the
#     package of every shared library the binaries need (dpkg-shlibdeps),
#     and its systemd unit, default flags and maintainer script are valid.
#   tests/deploy/install_test.sh BUILD_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
source "$ROOT/deploy/checks.sh"
checks_scratch  # WORK, SERVER_PID (killed at exit), CHECK_OUT

# --- 1. The client package, installed and used from outside.
PREFIX="$WORK/prefix"
check "cmake --install --component client" \
  cmake --install "$BUILD" --prefix "$PREFIX" --component client
check "installed: headers, archives, CMake package, pkg-config file" bash -c "
  cd '$PREFIX' && ls include/embedserve/client/embedding_client.h \
    include/embedserve/embedserve/v1/embedserve.grpc.pb.h include/embedserve/proto/grpc_status.h \
    lib*/libembedserve_client.a lib*/cmake/embedserve/embedserveConfig.cmake \
    lib*/pkgconfig/embedserve-client.pc share/embedserve/proto/embedserve.proto"
check "nothing of the server in the client component" bash -c "
  ! find '$PREFIX' -name 'embedserve' -type f | grep -q . && ! test -e '$PREFIX/etc'"
check "find_package(embedserve CONFIG): configure and build the consumer" bash -c "
  cmake -S '$ROOT/tests/deploy/consumer' -B '$WORK/consumer' -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH='$PREFIX' -DCMAKE_CXX_COMPILER_LAUNCHER=\$(command -v ccache || true) &&
  cmake --build '$WORK/consumer' -j2"
PC_PATH=$(dirname "$(ls "$PREFIX"/lib*/pkgconfig/embedserve-client.pc)")
check "pkg-config embedserve-client: compile and link by hand" bash -c "
  flags=\$(PKG_CONFIG_PATH='$PC_PATH' pkg-config --cflags --libs embedserve-client) &&
  inc=\$(grep -o -- '-I[^ ]*' <<<\"\$flags\" | head -1) &&
  test -f \"\${inc#-I}/client/embedding_client.h\" &&
  \${CCACHE:-\$(command -v ccache || true)} g++ -std=c++20 -O1 '$ROOT/tests/deploy/consumer/lookup_row.cc' \
    -o '$WORK/lookup_row_pc' \$flags"

printf 'tables { name: "t" num_embeddings: 10 embedding_dim: 3 }\n' > "$WORK/tables.txtpb"
"$BUILD/server/embedserve" --address=127.0.0.1:0 --port_file="$WORK/port" --data_dir= \
  --config="$WORK/tables.txtpb" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do [[ -s "$WORK/port" ]] && break; sleep 0.05; done
ADDR=127.0.0.1:$(cat "$WORK/port")
"$BUILD/client/embedctl" --address="$ADDR" assign t --ids=7 --values=0.5,-1.25,3e-5 >/dev/null
for bin in "$WORK/consumer/lookup_row" "$WORK/lookup_row_pc"; do
  check "$(basename "$bin") looks row 7 up" bash -c "
    [[ \"\$('$bin' '$ADDR' t 7)\" == '0.5 -1.25 2.99999992e-05' ]]"
done
check "the consumer reports a server error" bash -c "
  out=\$('$WORK/consumer/lookup_row' '$ADDR' t 10 2>&1); [[ \$? -eq 1 ]] &&
  grep -q 'INVALID_ARGUMENT' <<<\"\$out\""
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=

# --- 2. The Debian packages.
check "cpack builds both packages" \
  cpack --config "$BUILD/CPackConfig.cmake" -B "$WORK/packages"
SERVER_DEB=$(ls "$WORK"/packages/embedserve_*.deb)
CLIENT_DEB=$(ls "$WORK"/packages/libembedserve-client-dev_*.deb)
dpkg-deb -x "$SERVER_DEB" "$WORK/root"
dpkg-deb -e "$SERVER_DEB" "$WORK/control"
check "server package holds the binaries, unit and config" bash -c "cd '$WORK/root' &&
  ls usr/bin/embedserve usr/bin/embedctl lib/systemd/system/embedserve.service \
     etc/embedserve/embedserve.flags etc/embedserve/tables.txtpb"
# Every shared library the binaries need must come from a package the
# server package depends on: the dependency list is derived, not guessed.
check "Depends covers every NEEDED library's package" bash -c "
  deps=\$(dpkg-deb -f '$SERVER_DEB' Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//')
  for bin in '$WORK/root/usr/bin/embedserve' '$WORK/root/usr/bin/embedctl'; do
    for lib in \$(objdump -p \"\$bin\" | awk '/NEEDED/ {print \$2}'); do
      path=\$(ldconfig -p | awk -v l=\"\$lib\" '\$1 == l && /x86-64/ {print \$NF; exit}')
      [[ -n \"\$path\" ]] || { echo \"\$lib: not found\"; exit 1; }
      pkg=
      for p in \"\$path\" \"\$(readlink -f \"\$path\")\"; do  # merged /usr: try both spellings
        for q in \"\$p\" \"\${p#/usr}\" \"/usr\$p\"; do
          pkg=\$(dpkg -S \"\$q\" 2>/dev/null | head -1 | cut -d: -f1); [[ -n \"\$pkg\" ]] && break 2
        done
      done
      grep -qx \"\$pkg\" <<<\"\$deps\" || { echo \"\$lib (\$pkg) missing from Depends: \$deps\"; exit 1; }
    done
  done"
check "the /etc files are conffiles" bash -c "
  diff <(sort '$WORK/control/conffiles') <(cd '$WORK/root' && find etc -type f | sed 's|^|/|' | sort)"
check "postinst is valid sh" sh -n "$WORK/control/postinst"
# systemd-analyze checks every directive and that ExecStart's binary exists
# (the extracted one stands in for /usr/bin/embedserve).
sed "s|/usr/bin/embedserve|$WORK/root/usr/bin/embedserve|" \
  "$WORK/root/lib/systemd/system/embedserve.service" > "$WORK/embedserve.service"
check "systemd unit verifies" bash -c "
  out=\$(systemd-analyze verify --man=no '$WORK/embedserve.service' 2>&1) || { echo \"\$out\"; exit 1; }
  ! grep -q . <<<\"\$out\" || { echo \"\$out\"; exit 1; }"
# The default flags file parses (unknown flags or bad values would stop the
# server); later flags override its address and data directory.
cp "$WORK/root/etc/embedserve/tables.txtpb" "$WORK/pkg-tables.txtpb"
sed "s|/etc/embedserve/tables.txtpb|$WORK/pkg-tables.txtpb|" \
  "$WORK/root/etc/embedserve/embedserve.flags" > "$WORK/embedserve.flags"
"$WORK/root/usr/bin/embedserve" --flagfile="$WORK/embedserve.flags" --address=127.0.0.1:0 \
  --data_dir="$WORK/pkgdata" --port_file="$WORK/port2" 2>"$WORK/server2.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do [[ -s "$WORK/port2" ]] && break; sleep 0.05; done
check "packaged binary serves with the packaged flags and tables" bash -c "
  '$WORK/root/usr/bin/embedctl' --address=127.0.0.1:\$(cat '$WORK/port2') list | grep -q '^user '" 
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
check "client package: headers, archives, CMake and pkg-config files under /usr" bash -c "
  dpkg-deb -c '$CLIENT_DEB' | grep -q ' ./usr/include/embedserve/client/embedding_client.h' &&
  dpkg-deb -c '$CLIENT_DEB' | grep -q ' ./usr/lib/.*cmake/embedserve/embedserveConfig.cmake' &&
  dpkg-deb -f '$CLIENT_DEB' Depends | grep -q 'libgrpc++-dev'"

checks_done
