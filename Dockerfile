# Multi-stage: build with cgo (go-sqlite3), run as a non-root user that may
# bind port 179 for BGP.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/ ./cmd/collector ./cmd/pathtrace

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/fabrictrace --create-home fabrictrace
COPY --from=build /out/collector /usr/local/bin/fabrictrace-collector
COPY --from=build /out/pathtrace /usr/local/bin/pathtrace
RUN setcap cap_net_bind_service=+ep /usr/local/bin/fabrictrace-collector
USER fabrictrace
WORKDIR /var/lib/fabrictrace
EXPOSE 6343/udp 8008/tcp 179/tcp
ENTRYPOINT ["/usr/local/bin/fabrictrace-collector", "-db", "/var/lib/fabrictrace/fabrictrace.db"]
