# tether-plane: the vendor's coordination plane. It runs in the vendor's account, not the customer's, and is not part of the CDK app.
#
# Built from the repository root, as the in-account CodeBuild project does
# (deploy/cdk/stacks/images.go):
#
#   docker build -f build/plane.Dockerfile .
#
# deploy/cdk/dockerfiles_test.go checks that the package named below
# exists, builds with exactly these flags, and is what ENTRYPOINT runs.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
# Only the Go source: cmd/, internal/, and docs/api/, the API reference the
# service serves at /openapi.json (embedded).
COPY cmd/ cmd/
COPY internal/ internal/
COPY docs/api/ docs/api/
# Static and reproducible: no cgo (the SQLite driver is pure Go), no local
# paths in the binary, no symbol table.
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/tether-plane ./cmd/tether-plane

# No shell, no package manager: the binary and CA certificates only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tether-plane /tether-plane
USER nonroot
# The task's only writable path is the ephemeral /tmp volume (the root file
# system is read-only). Declaring it here makes Fargate seed the volume from
# the image's /tmp, which is world-writable with the sticky bit, so the
# nonroot user can write to it.
VOLUME ["/tmp"]
# The command line supplies the subcommand (serve, or an admin command).
ENTRYPOINT ["/tether-plane"]
