# embedserve container: a thin wrapper over the scripts `make test` runs
# (deploy/install-deps.sh, deploy/docker-entrypoint.sh, embedctl health).
#   docker build -t embedserve .
#   docker run -p 50051:50051 -v embedserve-data:/var/lib/embedserve embedserve
# Secure by default: on 0.0.0.0 the server starts only with TLS and tokens
# (or EMBEDSERVE_INSECURE=1); see the security variables below and README,
# Security.

FROM debian:12 AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN bash deploy/install-deps.sh
COPY . .
RUN make build

FROM debian:12-slim AS runtime
COPY deploy/install-deps.sh /tmp/install-deps.sh
RUN bash /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh
RUN useradd --system --uid 10001 --home-dir /var/lib/embedserve --create-home embedserve \
    && mkdir -p /var/lib/embedserve/data /etc/embedserve \
    && chown -R embedserve:embedserve /var/lib/embedserve
COPY --from=build /src/build/server/embedserve /src/build/client/embedctl /usr/local/bin/
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY deploy/demo_tables.txtpb /etc/embedserve/tables.txtpb
USER embedserve
WORKDIR /var/lib/embedserve
# Tables (RocksDB, --data_dir) live here and survive restarts.
VOLUME ["/var/lib/embedserve/data"]
# Security (deploy/docker-entrypoint.sh maps each to its flag; unset by
# default, mount the files read-only):
#   EMBEDSERVE_TOKENS_FILE    bearer tokens and roles (--tokens_file)
#   EMBEDSERVE_TLS_CERT, EMBEDSERVE_TLS_KEY  serve TLS (--tls_cert, --tls_key)
#   EMBEDSERVE_TLS_CLIENT_CA  require client certificates it signed (--tls_client_ca)
#   EMBEDSERVE_LOAD_DIR       LoadTable reads only beneath it (--load_dir; unset: off)
#   EMBEDSERVE_INSECURE=1     serve 0.0.0.0 without TLS and tokens (--insecure)
# The HEALTHCHECK below speaks plaintext: with TLS on, replace it at run time
# (docker run --health-cmd, README, Security).
ENV EMBEDSERVE_ADDRESS=0.0.0.0:50051 EMBEDSERVE_CONFIG=/etc/embedserve/tables.txtpb \
    EMBEDSERVE_DATA_DIR=/var/lib/embedserve/data EMBEDSERVE_DURABILITY=async
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["embedctl", "--address=127.0.0.1:50051", "--timeout=2", "health"]
ENTRYPOINT ["docker-entrypoint.sh"]
