//! Compiles the wire contract in `proto/` with the pure-Rust `protox` (no system protoc),
//! then generates prost types and pbjson (proto3 JSON) serde impls from the same descriptors.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
