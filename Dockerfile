# The one image of every auditrail workload: the `auditrail` binary, run as
# `auditrail run --service <name>` (the Helm chart picks the service).
# Build: `cargo xtask image` (docker, podman or buildah). Checked statically
# by `cargo xtask test` (xtask/src/image.rs).

ARG RUST_VERSION=1.95

# Build stage: the workspace, compiled once in release mode with the
# committed lock file. Protobuf is compiled in Rust (protox): no protoc.
FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p auditrail-cli --bin auditrail \
    && install -D -m 0755 target/release/auditrail /out/auditrail

# Runtime stage: distroless (glibc, CA certificates, no shell, no package
# manager), non-root user 65532 as in the chart's securityContext.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="auditrail" \
      org.opencontainers.image.description="The Kubernetes and Calico audit trail: ingestor, indexer, query, provisioner and reporter in one binary" \
      org.opencontainers.image.source="https://github.com/auditrail/auditrail" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/auditrail /usr/local/bin/auditrail
USER 65532:65532
EXPOSE 50052 50053 50054 50055 50056 50057 9465 9466 9467 9468 9469 9470 8080
ENTRYPOINT ["/usr/local/bin/auditrail"]
CMD ["--help"]
