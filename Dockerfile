# One image for every vms process (worker, carrier-sim, send, status...).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/vms ./cmd/vms

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/vms /usr/local/bin/vms
COPY configs/ /etc/vms/
RUN mkdir -p /var/cache/vms/tts /var/lib/vms/journal
ENTRYPOINT ["vms"]
