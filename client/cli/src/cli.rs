//! The `hemma` command line: its arguments, parsed by clap (the binary is `src/main.rs`; the
//! docs test parses every documented command line with these definitions).

use std::path::PathBuf;

use crate::input::{Columns, Essay, read_essays};
use crate::outputs::OutputFormat;
use clap::{Parser, Subcommand};
use hemma_proto::v1::FeatureSet;

/// Which matrices to extract (`--feature-set`); the names are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum FeatureSetArg {
    /// The [CLS] embedding of each essay.
    Embeddings,
    /// The 25 handcrafted features (needs prompts and LanguageTool on the server).
    Handcrafted,
    /// Both.
    Combined,
}

impl FeatureSetArg {
    /// The wire value.
    pub fn proto(self) -> FeatureSet {
        match self {
            FeatureSetArg::Embeddings => FeatureSet::Embeddings,
            FeatureSetArg::Handcrafted => FeatureSet::Handcrafted,
            FeatureSetArg::Combined => FeatureSet::Combined,
        }
    }
}

/// Talk to a hemma-offload server (usually through `ssh hemma -L 19000:127.0.0.1:9000 -N`).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Server URL.
    #[arg(
        long,
        env = "HEMMA_SERVER",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    pub server: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the essays come from.
#[derive(Debug, clap::Args)]
pub struct EssayFile {
    /// Input file: .jsonl (one JSON object per line) or .csv with a header.
    #[arg(long)]
    pub input: PathBuf,
    /// Column or field holding the essay text.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Column or field holding the essay id (rows without it are numbered from 0).
    #[arg(long, default_value = "id")]
    pub id_column: String,
}

impl EssayFile {
    /// Reads every essay, or names the first bad record.
    pub fn read(self) -> anyhow::Result<Vec<Essay>> {
        let columns = Columns::new(self.text_column, self.id_column);
        Ok(read_essays(&self.input, &columns)?)
    }
}

/// Where the prompts come from (`hemma extract`).
#[derive(Debug, clap::Args)]
pub struct PromptSource {
    /// Column or field holding each essay's prompt [default: prompt, when the feature set needs
    /// prompts].
    #[arg(long, conflicts_with = "prompt")]
    pub prompt_column: Option<String>,
    /// One prompt text for every essay.
    #[arg(long)]
    pub prompt: Option<String>,
}

/// The default cache folder: `$HEMMA_CACHE`, else `$XDG_CACHE_HOME/hemma`, else `~/.cache/hemma`.
pub fn default_cache_dir() -> Option<PathBuf> {
    hemma_runs::cache::default_root()
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Extract every feature of a file of essays into a folder: embeddings.npy + handcrafted.npy
    /// (or features.parquet), ids.txt and meta.json. Rows come from the local cache when the
    /// server's fingerprint and the essay are unchanged; an interrupted run resumes.
    Extract {
        /// The input file and its columns.
        #[command(flatten)]
        essays: EssayFile,
        /// Where the prompts come from.
        #[command(flatten)]
        prompts: PromptSource,
        /// Which features.
        #[arg(long, value_enum, default_value_t = FeatureSetArg::Combined)]
        feature_set: FeatureSetArg,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// npy: embeddings.npy and handcrafted.npy (float32, NaN kept); parquet: one
        /// features.parquet with an id column and named feature columns.
        #[arg(long, value_enum, default_value_t = OutputFormat::Npy)]
        format: OutputFormat,
        /// Essays per chunk on the stream.
        #[arg(long, default_value_t = 32)]
        chunk_size: usize,
        /// Chunks in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Cache folder [default: $XDG_CACHE_HOME/hemma or ~/.cache/hemma].
        #[arg(long, env = "HEMMA_CACHE")]
        cache: Option<PathBuf>,
        /// Run without the cache (nothing is kept; an interrupted run starts over).
        #[arg(long, conflicts_with = "cache")]
        no_cache: bool,
        /// Retries after transient failures (server unavailable, tunnel down) that made no progress.
        #[arg(long, default_value_t = 5)]
        retries: u32,
        /// Seconds before the first retry; doubled after each, at most 30.
        #[arg(long, default_value_t = 1.0)]
        retry_wait: f64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Check the whole path to the server: reachable through the tunnel, ready, LanguageTool
    /// ready, its fingerprint, and what the local cache holds for it. Exits 1 if anything is
    /// not ready.
    Doctor {
        /// Cache folder [default: $XDG_CACHE_HOME/hemma or ~/.cache/hemma].
        #[arg(long, env = "HEMMA_CACHE")]
        cache: Option<PathBuf>,
    },
    /// Print the server's description (fingerprint, model, engine, limits) as JSON.
    Info,
    /// Check the server's health; exits 1 unless it is SERVING.
    Health,
    /// Embed essays from a .jsonl or .csv file into a .npy matrix (+ ids in input order).
    Embed {
        /// The input file and its columns.
        #[command(flatten)]
        essays: EssayFile,
        /// Output .npy file, float32 [essays, dim]; ids go to <stem>.ids.txt (one per line) and the run to <stem>.meta.json, as `extract`'s ids.txt and meta.json.
        #[arg(long)]
        out: PathBuf,
        /// Essays per request.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Ask for float16 on the wire (half the tunnel bandwidth; the file stays float32).
        #[arg(long)]
        f16: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Check essays with LanguageTool (through the server) into a CSV of error counts:
    /// id, grammar, spelling, punctuation, then one column per category seen.
    Check {
        /// The input file and its columns.
        #[command(flatten)]
        essays: EssayFile,
        /// Output .csv file.
        #[arg(long)]
        out: PathBuf,
        /// Essays per request.
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}
