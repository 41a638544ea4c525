//! `hemma`: the researcher's command line for the hemma-offload feature service.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand};
use hemma_client::check_file::{CheckFileOptions, check_file};
use hemma_client::embed_file::{EmbedFileOptions, embed_file};
use hemma_client::input::{Columns, Essay, read_essays};
use hemma_client::{Client, ClientOptions};

/// Talk to a hemma-offload server (usually through `ssh hemma -L 19000:127.0.0.1:9000 -N`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Server URL.
    #[arg(
        long,
        env = "HEMMA_SERVER",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    server: String,
    #[command(subcommand)]
    command: Command,
}

/// Where the essays come from.
#[derive(Debug, clap::Args)]
struct EssayFile {
    /// Input file: .jsonl (one JSON object per line) or .csv with a header.
    #[arg(long)]
    input: PathBuf,
    /// Column or field holding the essay text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// Column or field holding the essay id (rows without it are numbered from 0).
    #[arg(long, default_value = "id")]
    id_column: String,
}

impl EssayFile {
    /// Reads every essay, or names the first bad record.
    fn read(self) -> anyhow::Result<Vec<Essay>> {
        let columns = Columns {
            text: self.text_column,
            id: self.id_column,
        };
        Ok(read_essays(&self.input, &columns)?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the server's description (fingerprint, model, engine, limits) as JSON.
    Info,
    /// Check the server's health; exits 1 unless it is SERVING.
    Health,
    /// Embed essays from a .jsonl or .csv file into a .npy matrix (+ ids in input order).
    Embed {
        #[command(flatten)]
        essays: EssayFile,
        /// Output .npy file, float32 [essays, dim]; ids go to <out>.ids.json.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let options = ClientOptions::new(cli.server.clone());
    match cli.command {
        Command::Info => {
            let client = Client::connect(options).await?;
            let info = client.info().await?;
            println!("{}", info_json(&info));
        }
        Command::Health => {
            let client = Client::connect(options).await?;
            let status = client.health().await?;
            println!("{}", status.as_str_name());
            if status != hemma_client::HealthStatus::Serving {
                std::process::exit(1);
            }
        }
        Command::Embed {
            essays,
            out,
            batch_size,
            concurrency,
            f16,
            quiet,
        } => {
            if batch_size == 0 || concurrency == 0 {
                bail!("--batch-size and --concurrency must be at least 1");
            }
            let essays = essays.read()?;
            let client = Client::connect(options).await?;
            let options = EmbedFileOptions {
                batch_size,
                concurrency,
                f16,
                progress: !quiet,
            };
            let r = embed_file(&client, &essays, &out, options).await?;
            eprintln!(
                "embedded {} essays ({} truncated) in {:.1} s ({:.1} essays/s) -> {} [{} x {}], ids -> {}",
                r.essays,
                r.truncated,
                r.seconds,
                r.essays as f64 / r.seconds.max(1e-9),
                out.display(),
                r.essays,
                r.dim,
                r.ids_path.display()
            );
        }
        Command::Check {
            essays,
            out,
            batch_size,
            concurrency,
            quiet,
        } => {
            if batch_size == 0 || concurrency == 0 {
                bail!("--batch-size and --concurrency must be at least 1");
            }
            let essays = essays.read()?;
            let client = Client::connect(options).await?;
            let options = CheckFileOptions {
                batch_size,
                concurrency,
                progress: !quiet,
            };
            let r = check_file(&client, &essays, &out, options).await?;
            eprintln!(
                "checked {} essays ({} from the server's cache) with LanguageTool {} in {:.1} s ({:.1} essays/s) -> {} ({} category columns)",
                r.essays,
                r.cached,
                r.languagetool_version,
                r.seconds,
                r.essays as f64 / r.seconds.max(1e-9),
                out.display(),
                r.categories.len()
            );
        }
    }
    Ok(())
}

fn info_json(info: &hemma_client::v1::InfoResponse) -> String {
    let model = info.model.clone().unwrap_or_default();
    let limits = info.limits.unwrap_or_default();
    serde_json::to_string_pretty(&serde_json::json!({
        "schema_version": info.schema_version,
        "fingerprint": info.fingerprint,
        "model": {
            "model_id": model.model_id, "model_sha256": model.model_sha256,
            "tokenizer_sha256": model.tokenizer_sha256, "max_length": model.max_length,
            "pooling": model.pooling, "dim": model.dim, "engine": model.engine,
            "execution_provider": model.execution_provider, "precision": model.precision,
        },
        "languagetool_version": info.languagetool_version,
        "embedding_features": info.embedding_feature_names.len(),
        "limits": {
            "max_items_per_request": limits.max_items_per_request,
            "max_bytes_per_text": limits.max_bytes_per_text,
            "max_bytes_per_request": limits.max_bytes_per_request,
            "max_message_bytes": limits.max_message_bytes,
        },
        "server_version": info.server_version,
        "git_sha": info.git_sha,
    }))
    .unwrap_or_default()
}
