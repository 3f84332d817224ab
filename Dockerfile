# Build: a static binary (no cgo), so the runtime image needs no libc.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/billingd ./cmd/billingd

# Run: distroless static, non-root. A container always sets DATABASE_URL (the
# embedded PostgreSQL mode is for local development only).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/billingd /billingd
USER nonroot:nonroot
ENV LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
# Orchestrators probe GET /healthz (liveness) and GET /readyz (readiness);
# distroless has no shell or curl, so the probe lives in the orchestrator.
ENTRYPOINT ["/billingd"]
CMD ["serve"]
