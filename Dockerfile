# syntax=docker/dockerfile:1
# tollgate container image: build with the same `cargo build --release --locked` the README and
# bench use; run as a non-root user on distroless (glibc, CA certificates, nothing else).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: a stub crate with the real manifest and lock file.
# The manifest names its bench and example targets, so cargo refuses it unless benches/ and
# examples/ are there too.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY examples ./examples
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
# Then the source; only this layer rebuilds when the code changes.
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
COPY config/tollgate.toml /etc/tollgate/tollgate.toml
ENV TOLLGATE_CONFIG=/etc/tollgate/tollgate.toml \
    TOLLGATE_LISTEN=0.0.0.0:8080 \
    TOLLGATE_ADMIN_LISTEN=0.0.0.0:9901 \
    TOLLGATE_LOG_FORMAT=json
EXPOSE 8080 9901
# The distroless nonroot user, numerically: Kubernetes runAsNonRoot can verify a number.
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/tollgate", "health"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve"]
