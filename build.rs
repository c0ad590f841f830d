//! Compiles the wire contract in `proto/` with the pure-Rust `protox` (no system protoc),
//! then generates prost types and pbjson (proto3 JSON) serde impls from the same descriptors.
//!
//! With the `embedded-broker` feature (in `default`), also compiles `csrc/mock_limits.c`, which
//! raises the per-partition retention of librdkafka's mock cluster (the embedded broker),
//! against the internal headers of the librdkafka tree that rdkafka-sys built (its
//! `cargo:root`, seen here as `DEP_RDKAFKA_ROOT`). Without it nothing needs librdkafka's
//! internals, so rdkafka's `dynamic-linking` works.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("CARGO_FEATURE_EMBEDDED_BROKER").is_some() {
        compile_mock_limits_shim()?;
    }
    let files = [
        "proto/churnwatch/v1/cdr.proto",
        "proto/churnwatch/v1/account.proto",
        "proto/churnwatch/v1/ticket.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptors = protox::compile(files, ["proto"])?;
    let descriptor_path = out.join("churnwatch_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    prost_build::Config::new()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .btree_map(["."])
        .compile_protos(&files, &["proto"])?;

    let set = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&set)?
        .btree_map(["."])
        .build(&[".churnwatch.v1"])?;
    Ok(())
}

/// Compiles the mock-cluster shim with the same headers and generated `config.h` as the
/// bundled librdkafka, so its view of `rd_kafka_mock_partition_t` matches exactly.
fn compile_mock_limits_shim() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=csrc/mock_limits.c");
    println!("cargo:rerun-if-env-changed=DEP_RDKAFKA_ROOT");
    let root = PathBuf::from(env::var("DEP_RDKAFKA_ROOT").map_err(|_| {
        "DEP_RDKAFKA_ROOT is not set: the `embedded-broker` feature needs rdkafka-sys to \
         build the bundled librdkafka (no `dynamic-linking`) as a direct dependency; build \
         with `--no-default-features` to leave the embedded broker out"
    })?);
    let src = root.join("src");
    // rdkafka-sys's default (non-cmake) build runs mklove's ./configure in a copy of the
    // librdkafka tree in its OUT_DIR: config.h at the root, sources and headers in src/.
    // The cmake build installs only public headers, which the shim cannot use.
    for needed in [root.join("config.h"), src.join("rdkafka_mock_int.h")] {
        if !needed.exists() {
            return Err(format!(
                "{} not found: the mock-limits shim (the `embedded-broker` feature) needs \
                 rdkafka-sys's bundled configure/make build (not `cmake-build` or \
                 `dynamic-linking`); build with `--no-default-features` to leave it out",
                needed.display()
            )
            .into());
        }
    }
    cc::Build::new()
        .file("csrc/mock_limits.c")
        // rd.h includes "../config.h" (mklove's output, which sets ENABLE_DEVEL and the WITH_*
        // switches that shape the internal structs) relative to itself, and defines
        // _GNU_SOURCE itself; librdkafka's Makefile.config adds no other defines.
        .include(&src)
        .include(&root)
        // librdkafka's own headers are noisy under -Wall -Wextra; the shim is checked with
        // `gcc -Wall` by hand.
        .warnings(false)
        .compile("churnwatch_mock_limits");
    Ok(())
}
