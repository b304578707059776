# avr-core container image. Build: docker build -t avr-core .
# Run:   docker run --rm -p 5001:5001 -p 6001:6001 -e HTTP_PORT=6001 -e STS_URL=ws://sts:6030 avr-core
# (Not built in CI: the CI machines have no Docker engine.)
FROM swift:6.3-bookworm AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libuv1-dev node-llhttp libhiredis-dev pkg-config libssl-dev libspeexdsp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
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
ENV PORT=5001
EXPOSE 5001 6001
# SIGTERM drains: /ready fails, new calls are refused, calls in progress go on for up to
# DRAIN_TIMEOUT (300 s; give `docker stop -t` more), then end with a hangup.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/avr-core"]
