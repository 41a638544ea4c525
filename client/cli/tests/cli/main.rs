//! The `hemma` CLI and the file commands behind it, against a real server on loopback (the tiny
//! model, the real LanguageTool, the fake one for faults, and a real sshd for the tunnel). One
//! binary for all of them: each links the whole server, so one binary saves minutes of linking.

mod args;
mod check_cli;
mod embed_file;
mod extract_cli;
mod fake_offload;
mod tunnel;

/// The `hemma` binary cargo built for these tests.
fn hemma_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_hemma"))
}
