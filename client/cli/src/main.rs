//! `hemma`: the researcher's command line for the hemma-offload feature service.

use std::path::PathBuf;

use anyhow::bail;
use hemma_cli::check_file::{CheckFileOptions, check_file};
use hemma_cli::cli::{Cli, Command, default_cache_dir};
use hemma_cli::embed_file::{EmbedFileOptions, embed_file};
use hemma_cli::extract_file::{ExtractFileOptions, LIMITED_LINES, extract_file, limited_lines};
use hemma_cli::input::{Columns, read_essays};
use hemma_client::{Client, ClientOptions};
use hemma_runs::cache::CacheError;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_args();
    let servers = cli.servers().map_err(anyhow::Error::msg)?;
    let options = ClientOptions::new(servers[0].clone());
    let one_server = |command: &str| {
        if servers.len() > 1 {
            eprintln!(
                "hemma: `{command}` talks to one server: {} (only `extract` spreads over several)",
                servers[0]
            );
        }
    };
    match cli.command {
        Command::Extract {
            essays,
            prompts,
            feature_set,
            out,
            format,
            chunk_size,
            concurrency,
            cache,
            no_cache,
            retries,
            retry_wait,
            quiet,
            strict,
        } => {
            if chunk_size == 0 || concurrency == 0 {
                bail!("--chunk-size and --concurrency must be at least 1");
            }
            if !(retry_wait.is_finite() && retry_wait >= 0.0) {
                bail!("--retry-wait must be a number of seconds >= 0");
            }
            let mut columns = Columns::new(essays.text_column, essays.id_column);
            if feature_set.proto().has_handcrafted() && prompts.prompt.is_none() {
                columns.prompt = Some(prompts.prompt_column.unwrap_or_else(|| "prompt".into()));
            }
            let mut essays = read_essays(&essays.input, &columns)?;
            if let Some(p) = prompts
                .prompt
                .filter(|_| feature_set.proto().has_handcrafted())
            {
                if p.trim().is_empty() {
                    bail!("--prompt is empty");
                }
                for e in &mut essays {
                    e.prompt = Some(p.clone());
                }
            }
            let cache = match no_cache {
                true => None,
                false => match cache.or_else(default_cache_dir) {
                    Some(dir) => Some(dir),
                    None => bail!("no cache folder: set --cache DIR (or HOME), or pass --no-cache"),
                },
            };
            let mut clients = Vec::with_capacity(servers.len());
            for server in &servers {
                clients.push(Client::connect(ClientOptions::new(server.clone())).await?);
            }
            let options = ExtractFileOptions {
                feature_set: feature_set.proto(),
                format,
                chunk_size,
                concurrency,
                retries,
                backoff: std::time::Duration::from_secs_f64(retry_wait),
                cache,
                progress: !quiet,
            };
            let done = extract_file(&clients, essays, &out, &options).await?;
            let r = done.run;
            eprintln!(
                "extracted {} essays ({} distinct: {} from the cache, {} computed in {} chunks) in {:.1} s ({:.1} essays/s) -> {}",
                r.essays,
                r.distinct,
                r.cache_hits,
                r.fetched,
                r.chunks,
                r.seconds,
                r.essays as f64 / r.seconds.max(1e-9),
                out.display()
            );
            if r.fetched > 0 {
                let s = &r.stages;
                eprintln!(
                    "server stage seconds (summed over chunks): parse {:.2}, embed {:.2} ({} strings), languagetool {:.2}, assembly {:.2}",
                    s.parse_seconds,
                    s.embed_seconds,
                    s.strings_embedded,
                    s.languagetool_seconds,
                    s.assembly_seconds
                );
            }
            let meta = out.join(hemma_cli::outputs::META_FILE);
            for line in limited_lines(&done.limited, r.essays, &meta, LIMITED_LINES) {
                eprintln!("{line}");
            }
            if strict && r.limited > 0 {
                bail!(
                    "--strict: {} of {} rows are limited (NaN handcrafted features), listed under `limited_rows` in {}; every output was written",
                    r.limited,
                    r.essays,
                    meta.display()
                );
            }
        }
        Command::Doctor { cache } => {
            let cache = cache.or_else(default_cache_dir);
            let mut ok = true;
            for server in &servers {
                if servers.len() > 1 {
                    println!("--    server {server}");
                }
                ok &= doctor(server, ClientOptions::new(server.clone()), cache.clone()).await;
            }
            if !ok {
                std::process::exit(1);
            }
        }
        Command::Info => {
            one_server("info");
            let client = Client::connect(options).await?;
            let info = client.info().await?;
            println!("{}", info_json(&info));
        }
        Command::Health => {
            one_server("health");
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
            one_server("embed");
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
            one_server("check");
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

/// Prints one line per check; true when everything is ready.
async fn doctor(server: &str, options: ClientOptions, cache: Option<PathBuf>) -> bool {
    let client = match Client::connect(options).await {
        Ok(c) => {
            println!("ok    reachable: {server}");
            c
        }
        Err(e) => {
            println!("FAIL  reachable: {e}");
            return false;
        }
    };
    let mut ok = true;
    match client.health().await {
        Ok(hemma_client::HealthStatus::Serving) => println!("ok    health: SERVING"),
        Ok(s) => {
            ok = false;
            println!(
                "FAIL  health: {} (still loading, or failed: see /readyz and the server log)",
                s.as_str_name()
            );
        }
        Err(e) => {
            ok = false;
            println!("FAIL  health: {e}");
        }
    }
    let readyz = format!("{}/readyz", server.trim_end_matches('/'));
    match fetch_readyz(&readyz).await {
        Ok(body) => {
            let ready = body["ready"].as_bool().unwrap_or(false);
            println!(
                "{}  ready: {} (model {})",
                if ready { "ok  " } else { "FAIL" },
                ready,
                body["model"].as_str().unwrap_or("?")
            );
            ok &= ready;
            match body.get("languagetool") {
                None => println!(
                    "--    languagetool: not configured on the server (handcrafted and combined extraction will fail)"
                ),
                Some(lt) => {
                    let lt_ready = lt["ready"].as_bool().unwrap_or(false);
                    ok &= lt_ready;
                    let ups = lt["upstreams"].as_array().cloned().unwrap_or_default();
                    let healthy = ups
                        .iter()
                        .filter(|u| u["healthy"].as_bool() == Some(true))
                        .count();
                    println!(
                        "{}  languagetool: {} {}, {healthy}/{} instances healthy",
                        if lt_ready { "ok  " } else { "FAIL" },
                        if lt_ready { "ready" } else { "NOT ready" },
                        lt["version"].as_str().unwrap_or("(version unknown)"),
                        ups.len()
                    );
                    for u in ups.iter().filter(|u| u["healthy"].as_bool() != Some(true)) {
                        println!(
                            "        {}: {}",
                            u["url"].as_str().unwrap_or("?"),
                            u["last_error"].as_str().unwrap_or("not probed yet")
                        );
                    }
                }
            }
        }
        Err(e) => {
            ok = false;
            println!("FAIL  ready: {readyz}: {e}");
        }
    }
    match client.info().await {
        Ok(info) => {
            match hemma_runs::cache::is_fingerprint(&info.fingerprint) {
                true => println!("ok    fingerprint: {}", info.fingerprint),
                false => {
                    ok = false;
                    println!(
                        "FAIL  fingerprint: {:?} is not a sha256 in hex (is this a hemma-offload server?)",
                        info.fingerprint.chars().take(80).collect::<String>()
                    );
                }
            }
            match cache {
                None => println!("--    cache: no cache folder (set --cache or HOME)"),
                Some(dir) => match hemma_runs::cache::summary(&dir, &info.fingerprint) {
                    Ok(sets) if sets.is_empty() => {
                        println!(
                            "ok    cache: {} holds nothing for this fingerprint",
                            dir.display()
                        )
                    }
                    Ok(sets) => {
                        for (set, entries, bytes) in sets {
                            println!(
                                "ok    cache: {} {set}: {entries} essays ({:.1} MB)",
                                dir.display(),
                                bytes as f64 / 1e6
                            );
                        }
                    }
                    Err(e) => {
                        ok &= !matches!(e, CacheError::UnsafeFingerprint { .. });
                        println!("FAIL  cache: {e}");
                    }
                },
            }
        }
        Err(e) => {
            ok = false;
            println!("FAIL  info: {e}");
        }
    }
    ok
}

/// GETs `/readyz` (served beside gRPC on the same port); its JSON, whatever the status code.
async fn fetch_readyz(url: &str) -> anyhow::Result<serde_json::Value> {
    let resp = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?
        .get(url)
        .send()
        .await?;
    Ok(resp.json().await?)
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
        "nlp_sha256": info.nlp_sha256,
        "embedding_features": info.embedding_feature_names.len(),
        "handcrafted_features": info.handcrafted_feature_names,
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
