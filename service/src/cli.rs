//! The `hemma-offload` command line: its arguments, parsed by clap (the binary is `src/main.rs`;
//! the docs test parses every documented command line with these definitions).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

/// Feature server for essay-scoring research: DeBERTa embeddings over gRPC.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    /// What to do.
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC and HTTP on one port until SIGINT/SIGTERM.
    Serve {
        /// TOML file with the same settings (keys are the flag names with underscores).
        #[arg(long, env = "HEMMA_CONFIG")]
        config: Option<PathBuf>,
        /// The server settings.
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Prove the configured execution provider is in use and computes what ONNX Runtime on the
    /// CPU computes: embeds a fixed set of texts with both, prints a JSON report, exits 1 on a
    /// mismatch. Takes the same settings as `serve`.
    Selftest {
        /// TOML file with the same settings as `serve`.
        #[arg(long, env = "HEMMA_CONFIG")]
        config: Option<PathBuf>,
        /// The server settings.
        #[command(flatten)]
        args: ServeArgs,
    },
}
