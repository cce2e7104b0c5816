# tether-agent: the customer-side agent (heartbeats, releases, diagnostics); it holds no customer data.
# Also /tether-upgrade, the scheduled task that applies staged releases, and
# /tether-exchange, the task that mirrors the agent's data dir to the exchange bucket.
#
# Built from the repository root, as the in-account CodeBuild project does
# (deploy/cdk/stacks/images.go):
#
#   docker build -f build/agent.Dockerfile .
#
# deploy/cdk/dockerfiles_test.go checks that the package named below
# exists, builds with exactly these flags, and is what ENTRYPOINT runs.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
# Only the Go source: the binaries need nothing outside cmd/ and internal/.
COPY cmd/ cmd/
COPY internal/ internal/
# Static and reproducible: no cgo (the SQLite driver is pure Go), no local
# paths in the binary, no symbol table.
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/tether-agent ./cmd/tether-agent
# The scheduled upgrade task's entry point (the task names it): apart from
# the agent, so the agent cannot change stacks.
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/tether-upgrade ./cmd/tether-upgrade
# The exchange task's (the task names it): apart from the agent, so the agent
# reaches no S3 bucket and what writes the exchange bucket never talks to the vendor.
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/tether-exchange ./cmd/tether-exchange

# No shell, no package manager: the binary and CA certificates only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tether-agent /tether-agent
COPY --from=build /out/tether-upgrade /tether-upgrade
COPY --from=build /out/tether-exchange /tether-exchange
USER nonroot
# The task's only writable path is the ephemeral /tmp volume (the root file
# system is read-only). Declaring it here makes Fargate seed the volume from
# the image's /tmp, which is world-writable with the sticky bit, so the
# nonroot user can write to it.
VOLUME ["/tmp"]
# The task supplies the subcommand (run).
ENTRYPOINT ["/tether-agent"]
