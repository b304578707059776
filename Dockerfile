# avr-core container image. Build: docker build -t avr-core .
# Run:   docker run --rm -p 5001:5001 -p 6001:6001 -e STS_URL=ws://sts:6030 avr-core
# (Not built in CI: the CI machines have no Docker engine.)
FROM swift:6.3-bookworm AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libuv1-dev node-llhttp libhiredis-dev pkg-config libssl-dev libspeexdsp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift Package.resolved ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY bench ./bench
RUN swift build -c release --product avr-core --static-swift-stdlib \
 && install -D .build/release/avr-core /out/avr-core

FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libuv1 libhiredis0.14 libssl3 libspeexdsp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home avr
COPY --from=build /out/avr-core /usr/local/bin/avr-core
USER avr
ENV PORT=5001 HTTP_PORT=6001
EXPOSE 5001 6001
# Healthy while GET /ready answers 200 (bash's /dev/tcp: the image needs no HTTP client). A
# draining instance (SIGTERM) answers 503 and so turns unhealthy: it takes no new calls.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HTTP_PORT} && printf 'GET /ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGTERM drains: /ready fails, new calls are refused, calls in progress go on for up to
# DRAIN_TIMEOUT (300 s; give `docker stop -t` more), then end with a hangup.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/avr-core"]
