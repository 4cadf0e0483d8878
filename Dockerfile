# syntax=docker/dockerfile:1
# Latchkey container image: a static binary on distroless, running as an unprivileged user.
#
#   docker build -t latchkey:latest --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 8080:8080 -v latchkey-data:/data latchkey:latest serve --demo
#
# Configuration: mount a file at /etc/latchkey/latchkey.yaml (the working directory, so both
# `serve` and the HEALTHCHECK read it without --config), or set LATCHKEY_* variables. The image's
# own latchkey.yaml listens on 0.0.0.0:8080, serves metrics on 0.0.0.0:9191 and keeps its data
# in the /data volume.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: the SQLite driver is pure Go, so the binary needs no libc and runs on distroless/static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/latchkey ./cmd/latchkey
RUN mkdir -p /out/data /out/etc && printf '%s\n' \
      '# Defaults for the container; mount your own file over this one.' \
      'data_dir: /data' \
      'server:' \
      '  listen: 0.0.0.0:8080' \
      'metrics:' \
      '  listen: 0.0.0.0:9191' \
      > /out/etc/latchkey.yaml

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/latchkey /usr/local/bin/latchkey
COPY --from=build /out/etc/latchkey.yaml /etc/latchkey/latchkey.yaml
# The data directory belongs to the nonroot user (65532) and is kept private (0700).
COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /data
USER 65532:65532
WORKDIR /etc/latchkey
VOLUME /data
EXPOSE 8080 9191
# No curl or shell in the image: the binary asks its own /.latchkey/healthz (liveness: 200 while
# the process serves, also during a database outage). `latchkey healthcheck --ready` asks
# /.latchkey/readyz instead (fresh session view, store answering and writable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/latchkey", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
