//! Compiles `proto/auditrail/v1/*.proto` without a system `protoc`: protox
//! parses them into a descriptor set, which drives prost/tonic code generation
//! and is embedded for gRPC reflection.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dir = root.join("auditrail/v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("auditrail_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Event bytes as `bytes::Bytes`: decoded without a copy per event and
        // cloned by reference count when a batch is retried.
        .bytes(".auditrail.v1.RawEvent.raw")
        .bytes(".auditrail.v1.AuditEvent.raw")
        .compile_fds(fds)?;
    Ok(())
}
