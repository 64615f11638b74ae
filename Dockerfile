# embedserve container. The build stage compiles the server and makes the
# Debian packages (cpack); the runtime stage installs the embedserve .deb with
# apt, so every shared library comes from the package's Depends (computed by
# dpkg-shlibdeps), never from a hand-kept list.
#   DOCKER_BUILDKIT=1 docker build -t embedserve .
#   docker run -p 50051:50051 -e EMBEDSERVE_INSECURE=1 \
#     -v embedserve-data:/var/lib/embedserve/data embedserve
# Secure by default: on 0.0.0.0 the server starts only with TLS and tokens
# (or EMBEDSERVE_INSECURE=1); see the variables below and README, Security.
# deploy/test-image.sh builds and runs this image (.ci/run).

FROM debian:12 AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN bash deploy/install-deps.sh --package && rm -rf /var/lib/apt/lists/*
COPY . .
# Only what is installed (no tests or benchmarks); ccache kept in a BuildKit
# cache so that a rebuild after a small change takes seconds.
ENV CCACHE_DIR=/ccache CCACHE_BASEDIR=/src
RUN --mount=type=cache,target=/ccache \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DEMBEDSERVE_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cpack --config /build/CPackConfig.cmake -B /packages \
 && rm -rf /packages/_CPack_Packages

FROM debian:12-slim AS runtime
COPY --from=build /packages/embedserve_*.deb /tmp/
# The user first, with a fixed uid/gid 10001 (volume ownership, Kubernetes'
# runAsUser); the package's postinst keeps an existing user.
RUN apt-get update \
 && apt-get install -y --no-install-recommends adduser \
 && addgroup --system --gid 10001 embedserve \
 && adduser --system --uid 10001 --ingroup embedserve --home /var/lib/embedserve \
      --no-create-home embedserve \
 && apt-get install -y --no-install-recommends /tmp/embedserve_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/*.deb
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY deploy/healthcheck.sh /usr/local/bin/embedserve-healthcheck
USER 10001:10001
WORKDIR /var/lib/embedserve
# Tables (RocksDB, --data_dir) live here and survive restarts.
VOLUME ["/var/lib/embedserve/data"]
# Every variable maps to an embedserve flag (deploy/docker-entrypoint.sh):
#   EMBEDSERVE_ADDRESS         where gRPC is served (--address)
#   EMBEDSERVE_CONFIG          tables created at start (--config; the demo tables,
#                              which the package installs as /etc/embedserve/tables.txtpb)
#   EMBEDSERVE_DATA_DIR, EMBEDSERVE_DURABILITY  RocksDB directory, async|sync
#   EMBEDSERVE_HEALTH_ADDRESS  plaintext port answering only grpc.health.v1 (--health_address);
#                              HEALTHCHECK probes it, so it works with TLS on the main port
#   EMBEDSERVE_METRICS_ADDRESS Prometheus text format at /metrics (--metrics_address; unset: off)
# Security (unset by default; mount the files read-only):
#   EMBEDSERVE_TOKENS_FILE     bearer tokens and roles (--tokens_file)
#   EMBEDSERVE_TLS_CERT, EMBEDSERVE_TLS_KEY  serve TLS (--tls_cert, --tls_key)
#   EMBEDSERVE_TLS_CLIENT_CA   require client certificates it signed (--tls_client_ca)
#   EMBEDSERVE_LOAD_DIR        LoadTable reads only beneath it (--load_dir; unset: off)
#   EMBEDSERVE_INSECURE=1      serve 0.0.0.0 without TLS and tokens (--insecure)
ENV EMBEDSERVE_ADDRESS=0.0.0.0:50051 EMBEDSERVE_HEALTH_ADDRESS=127.0.0.1:50052 \
    EMBEDSERVE_CONFIG=/etc/embedserve/tables.txtpb \
    EMBEDSERVE_DATA_DIR=/var/lib/embedserve/data EMBEDSERVE_DURABILITY=async
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["embedserve-healthcheck"]
# SIGTERM drains: calls in flight get up to 5 s, then RocksDB is closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint.sh"]
