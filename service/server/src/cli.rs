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
    /// Model folders: `models fetch MODEL_ID --out DIR`.
    Models {
        /// What to do with models.
        #[command(subcommand)]
        action: ModelsCommand,
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

/// The `models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Build a model folder the server loads (config.json, tokenizer.json converted from
    /// spm.model, model.safetensors, manifest.json) from the Hugging Face Hub, its local cache or
    /// a checkpoint folder. It serves with `--engine candle`; for ONNX Runtime run
    /// `models/export_deberta.py --source DIR` on it to add model.onnx.
    Fetch {
        /// Hugging Face model id.
        #[arg(default_value = "microsoft/deberta-v3-base")]
        model_id: String,
        /// Output model folder.
        #[arg(long)]
        out: PathBuf,
        /// Branch, tag or commit on the Hub.
        #[arg(long, default_value = "main")]
        revision: String,
        /// Read a checkpoint folder (config.json, spm.model, model.safetensors or
        /// pytorch_model.bin) instead of the Hub.
        #[arg(long, conflicts_with_all = ["hf_cache", "offline"])]
        source: Option<PathBuf>,
        /// Hugging Face cache root [default: $HF_HOME/hub or ~/.cache/huggingface/hub].
        #[arg(long)]
        hf_cache: Option<PathBuf>,
        /// Use only what the Hugging Face cache holds; never download.
        #[arg(long)]
        offline: bool,
        /// Longest input, special tokens included, written to the manifest.
        #[arg(long, default_value_t = 512)]
        max_length: usize,
    },
}
