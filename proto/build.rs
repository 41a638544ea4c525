//! Compiles the contract with a vendored `protoc`, and writes the descriptor set for reflection.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // No `connect` helper: it needs tonic's transport, which the contract crate leaves to its users.
        .build_transport(false)
        .file_descriptor_set_path(out.join("hemma_offload_v1_descriptor.bin"))
        .compile_protos(&["proto/hemma/offload/v1/offload.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
