# Build: a static binary (no cgo), so the runtime image needs no libc.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The context has no .git (.dockerignore), so the toolchain cannot record
# the revision itself: pass the version and revision (README "Container image"):
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" --build-arg REVISION="$(git rev-parse HEAD)" -t billingd .
# `billingd version`, the start log line and billingd_build_info report them
# (left empty: "(devel)" and "unknown").
ARG VERSION=
ARG REVISION=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/billingd ./cmd/billingd

# Run: distroless static, non-root. A container always sets DATABASE_URL (the
# embedded PostgreSQL mode is for local development only).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=
ARG REVISION=
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/billingd /billingd
USER nonroot:nonroot
ENV LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
# Orchestrators probe GET /healthz (liveness) and GET /readyz (readiness);
# distroless has no shell or curl, so the probe lives in the orchestrator.
ENTRYPOINT ["/billingd"]
CMD ["serve"]
