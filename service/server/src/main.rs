//! `hemma-offload`: the server binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hemma_server::cli::{Cli, Command, ModelsCommand};
use hemma_server::config::{Config, ServeArgs};
use hemma_server::server::Prepared;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, args } => serve(config, args).await,
        Command::Selftest { config, args } => selftest(config, args).await,
        Command::Models { action } => models(action).await,
    }
}

async fn models(action: ModelsCommand) -> anyhow::Result<()> {
    let ModelsCommand::Fetch {
        model_id,
        out,
        revision,
        source,
        hf_cache,
        offline,
        max_length,
    } = action;
    let from = match source {
        Some(dir) => hemma_embed::fetch::Source::Folder(dir),
        None => hemma_embed::fetch::Source::Hub {
            repo_id: model_id.clone(),
            revision,
            cache: hf_cache,
            offline,
        },
    };
    let report = tokio::task::spawn_blocking(move || {
        hemma_embed::fetch::fetch(&from, &model_id, &out, max_length)
    })
    .await
    .context("the fetch task failed")??;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "model folder {} is ready for --engine candle; for ONNX Runtime export it (Python): \
         python models/export_deberta.py --source {} --out <onnx folder>",
        report.out.display(),
        report.out.display()
    );
    Ok(())
}

/// Resolves the settings as `serve` does: flags and env over the optional file.
fn resolve(file: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<Config> {
    let file = file.as_deref().map(ServeArgs::from_toml_file).transpose()?;
    // ORT_DYLIB_PATH is the variable ONNX Runtime users already set; it is read here only.
    let ort_env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    Ok(Config::resolve(args, file, ort_env)?)
}

async fn selftest(file: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<()> {
    let config = resolve(file, args)?;
    let report = tokio::task::spawn_blocking(move || hemma_server::selftest::run(&config))
        .await
        .context("the self-check task failed")??;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.pass {
        eprintln!(
            "selftest FAILED: provider in use {} (asked for {}), max abs diff {:.2e} (tolerance {:.0e})",
            report.provider_in_use,
            report.provider_requested,
            report.max_abs_diff,
            report.tolerance
        );
        std::process::exit(1);
    }
    Ok(())
}

async fn serve(file: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<()> {
    let config = resolve(file, args)?;
    hemma_server::telemetry::init_logging(config.log_format);
    tracing::info!(config = %serde_json::to_string(&config)?, "starting");
    let prepared = Prepared::new(config.clone())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    prepared.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
