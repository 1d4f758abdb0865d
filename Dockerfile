# syntax=docker/dockerfile:1
# The xero-operator image: a statically linked binary on distroless, running as non-root.
#
#   docker build -t xero-operator .
#
# The binary is built for x86_64-unknown-linux-gnu with the C runtime linked in
# (`+crt-static`), so the final image needs no libc.

# Base images are pinned by digest (the multi-architecture index of each tag), so a rebuild uses
# exactly the same bytes; the tag stays for people. Update both deliberately, for example with
# `crane digest rust:1.95.0-bookworm` and `crane digest gcr.io/distroless/static-debian12:nonroot`.
# The Rust release matches rust-toolchain.toml.
FROM rust:1.95.0-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    RUSTFLAGS="-C target-feature=+crt-static"
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin xero-operator \
    && cp target/x86_64-unknown-linux-gnu/release/xero-operator /xero-operator \
    # Refuse to ship a binary that still needs a dynamic loader.
    && if readelf -l /xero-operator | grep -q 'Requesting program interpreter'; then \
         echo "xero-operator is not statically linked" >&2; exit 1; \
       fi

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
LABEL org.opencontainers.image.title="xero-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps Power BI datasets built on Xero refreshing" \
      org.opencontainers.image.source="https://github.com/xero-operator/xero-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /xero-operator /usr/local/bin/xero-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/xero-operator"]
CMD ["run"]
