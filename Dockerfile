# syntax=docker/dockerfile:1
# authd's container image: a static binary (no cgo; SQLite is pure Go) on
# distroless/static, run as an unprivileged numeric user.
#
#   docker build -t authd .
#   docker run -p 8008:8008 -v authd-data:/data authd     # SQLite in /data
#   docker run -e AUTHD_DATABASE_URL=postgres://... authd  # Postgres
#
# deploy/dockerfile_test.go checks this file's shape and builds its `go build`
# line.

# Build on the builder's own platform; Go cross-compiles to the target's.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change reuses this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/authd ./cmd/authd
# The SQLite default's directory, owned by the runtime user (a fresh named
# volume on /data takes this ownership).
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="authd" \
      org.opencontainers.image.description="Matrix homeserver login, logout, refresh and forward-auth service" \
      org.opencontainers.image.source="https://github.com/authd/authd" \
      org.opencontainers.image.documentation="https://github.com/authd/authd#deployment" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION"
COPY --from=build /out/authd /authd
COPY --from=build --chown=65532:65532 /out/data /data
# distroless's nonroot user, by number, so that runAsNonRoot can check it.
USER 65532:65532
ENV AUTHD_LISTEN=:8008 \
    AUTHD_DATABASE_URL=sqlite:/data/authd.db \
    AUTHD_LOG_FORMAT=json
VOLUME /data
EXPOSE 8008
# authd healthcheck asks /readyz on AUTHD_LISTEN: no shell or curl needed.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/authd", "healthcheck"]
ENTRYPOINT ["/authd"]
CMD ["serve"]
