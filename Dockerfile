# embedserve container: a thin wrapper over the scripts `make test` runs
# (deploy/install-deps.sh, deploy/docker-entrypoint.sh, embedctl health).
#   docker build -t embedserve .
#   docker run -p 50051:50051 -v embedserve-data:/var/lib/embedserve embedserve

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
ENV EMBEDSERVE_ADDRESS=0.0.0.0:50051 EMBEDSERVE_CONFIG=/etc/embedserve/tables.txtpb \
    EMBEDSERVE_DATA_DIR=/var/lib/embedserve/data EMBEDSERVE_DURABILITY=async
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["embedctl", "--address=127.0.0.1:50051", "--timeout=2", "health"]
ENTRYPOINT ["docker-entrypoint.sh"]
