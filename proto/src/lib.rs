//! The `hemma.offload.v1` gRPC contract, compiled once for both the server and the client.
//!
//! Matrices are raw little-endian row-major bytes; [`matrix`] has the encoders and decoders both
//! sides use, so the byte layout is defined in one place.

/// Generated messages, client and server of package `hemma.offload.v1`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("hemma.offload.v1");
}

mod feature_set;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod matrix;

/// Encoded `FileDescriptorSet` of the contract, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("hemma_offload_v1_descriptor");

/// Version of the feature schema (`docs/features.md`); bumped when a column changes meaning.
pub const SCHEMA_VERSION: u32 = 2;
