# Tollgate: a multi-stage build producing a small runtime image.
# Not built on the development machine (no Docker engine there); kept simple and standard.
#   docker build -t tollgate .
#   docker run -p 8000:8000 -p 127.0.0.1:8001:8001 -e ADMIN_PASSWORD=… -v tollgate-data:/data tollgate

# --- build: the Swift toolchain, a release binary with the Swift runtime linked in statically
FROM swift:6.2-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product tollgate --static-swift-stdlib \
    && cp "$(swift build -c release --show-bin-path)/tollgate" /tollgate

# --- runtime: Debian slim with CA certificates (cloud providers) and time zones (APP_TZ)
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tollgate \
    && mkdir -p /data && chown tollgate /data
COPY --from=build /tollgate /usr/local/bin/tollgate
USER tollgate
WORKDIR /data
# Listen on all interfaces inside the container; publish the admin port on the host's loopback
# only (127.0.0.1:8001:8001) unless it is meant to be reached from elsewhere.
ENV TOLLGATE_DATA_DIR=/data \
    DATABASE_URL=sqlite:////data/tollgate.db \
    PROXY_HOST=0.0.0.0 \
    ADMIN_HOST=0.0.0.0 \
    ADMIN_ALLOW_REMOTE=true \
    TOLLGATE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000 8001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve"]
