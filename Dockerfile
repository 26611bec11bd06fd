# syntax=docker/dockerfile:1
# tollgate container image: built with `cargo build --profile dist --locked` (fat LTO, the build
# the benchmark measures); run as a non-root user on distroless (glibc, CA certificates, nothing
# else).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: stub crates with the real manifests and lock file.
# The root manifest names its bench target, so cargo refuses it unless benches/ is there too.
COPY Cargo.toml Cargo.lock ./
COPY crates/http/Cargo.toml crates/http/
COPY crates/config/Cargo.toml crates/config/
COPY crates/client/Cargo.toml crates/client/
COPY crates/state/Cargo.toml crates/state/
COPY crates/auth/Cargo.toml crates/auth/
COPY crates/core/Cargo.toml crates/core/
COPY crates/server/Cargo.toml crates/server/
COPY benches ./benches
RUN for crate in crates/*/; do mkdir -p "$crate/src" && touch "$crate/src/lib.rs"; done \
 && mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --profile dist --locked \
 && rm -rf src crates/*/src
# Then the source; only these layers rebuild when the code changes.
COPY crates ./crates
COPY src ./src
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs && cargo build --profile dist --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/dist/tollgate /usr/local/bin/tollgate
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
