//! The `hemma` command line: its arguments, parsed by clap (the binary is `src/main.rs`; the
//! docs test parses every documented command line with these definitions).
//!
//! Precedence: a flag given on the command line always wins over its environment variable
//! (`HEMMA_SERVER`, `HEMMA_CACHE`), and the environment over the default. clap counts a value
//! from the environment as if the flag had been given, so no flag declares a conflict with an
//! environment-backed one; [`Cli::try_parse_args_from`] resolves those pairs itself, refusing
//! only two flags that were both typed (`--cache DIR --no-cache`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::input::{Columns, Essay, read_essays};
use crate::outputs::OutputFormat;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
    /// Server URL; several, comma-separated, share the chunks of `hemma extract` (they must
    /// have the same fingerprint; the other commands use the first).
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

impl Cli {
    /// The URLs of `--server`, in order (one or more).
    pub fn servers(&self) -> Result<Vec<String>, String> {
        let servers: Vec<String> = self
            .server
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        match servers.iter().any(String::is_empty) {
            true => Err(format!(
                "--server {:?} has an empty entry: give URLs separated by commas, e.g. http://127.0.0.1:19000,http://127.0.0.1:19001",
                self.server
            )),
            false => Ok(servers),
        }
    }

    /// Parses the process's arguments with the precedence rules; on an error prints clap's
    /// message and exits (2), as `Cli::parse` does.
    pub fn parse_args() -> Cli {
        Self::try_parse_args_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (the first is the program name): clap's parse, then the precedence rules.
    /// An environment variable only fills a flag that was not given; `--no-cache` beats
    /// `$HEMMA_CACHE`, and only `--cache DIR --no-cache` both typed is an error.
    pub fn try_parse_args_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        if let Command::Extract {
            cache, no_cache, ..
        } = &mut cli.command
            && *no_cache
        {
            let typed = matches
                .subcommand_matches("extract")
                .and_then(|m| m.value_source("cache"))
                == Some(ValueSource::CommandLine);
            if typed {
                let message = "the argument '--no-cache' cannot be used with '--cache <CACHE>'";
                return Err(command
                    .find_subcommand_mut("extract")
                    .map(|sub| sub.error(clap::error::ErrorKind::ArgumentConflict, message))
                    .unwrap_or_else(|| {
                        command.error(clap::error::ErrorKind::ArgumentConflict, message)
                    }));
            }
            *cache = None;
        }
        Ok(cli)
    }
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
        /// Run without the cache (nothing is kept; an interrupted run starts over); wins over
        /// $HEMMA_CACHE.
        #[arg(long)]
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
        /// Exit 1 when any essay's row is limited (its text exceeded the server's analyser, so its
        /// handcrafted features are NaN); the outputs are written first either way.
        #[arg(long)]
        strict: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    /// Serialises the tests that set environment variables (only these tests read them).
    static ENV: Mutex<()> = Mutex::new(());

    /// Parses `args` with `vars` set in the environment (and every other `HEMMA_*` flag
    /// variable unset), then restores the environment.
    fn parse_with(vars: &[(&str, &str)], args: &[&str]) -> Result<Cli, clap::Error> {
        let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let names: Vec<String> = env_flags().into_iter().map(|(_, _, env)| env).collect();
        let saved: Vec<(String, Option<OsString>)> = names
            .iter()
            .map(|n| (n.clone(), std::env::var_os(n)))
            .collect();
        // SAFETY: the environment is only changed under `ENV`, and nothing else in this test
        // binary reads these variables, or reads the environment outside std (whose readers
        // take std's own environment lock).
        unsafe {
            for name in &names {
                std::env::remove_var(name);
            }
            for (name, value) in vars {
                std::env::set_var(name, value);
            }
        }
        let parsed = Cli::try_parse_args_from(std::iter::once("hemma").chain(args.iter().copied()));
        // SAFETY: as above.
        unsafe {
            for (name, value) in saved {
                match value {
                    Some(v) => std::env::set_var(&name, v),
                    None => std::env::remove_var(&name),
                }
            }
        }
        parsed
    }

    /// Every (command, flag, variable) of an environment-backed flag.
    fn env_flags() -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        let top = Cli::command();
        let commands = std::iter::once(("hemma".to_owned(), &top))
            .chain(top.get_subcommands().map(|c| (c.get_name().to_owned(), c)));
        for (name, command) in commands {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    out.insert((
                        name.clone(),
                        arg.get_id().to_string(),
                        env.to_string_lossy().into_owned(),
                    ));
                }
            }
        }
        out
    }

    const EXTRACT: [&str; 5] = ["extract", "--input", "essays.jsonl", "--out", "out"];

    fn extract_cache(cli: &Cli) -> (Option<PathBuf>, bool) {
        match &cli.command {
            Command::Extract {
                cache, no_cache, ..
            } => (cache.clone(), *no_cache),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_environment_backed_flag_is_tested_and_none_is_in_a_declared_conflict() {
        let want: BTreeSet<(String, String, String)> = [
            ("hemma", "server", "HEMMA_SERVER"),
            ("extract", "cache", "HEMMA_CACHE"),
            ("doctor", "cache", "HEMMA_CACHE"),
        ]
        .iter()
        .map(|(c, a, e)| (c.to_string(), a.to_string(), e.to_string()))
        .collect();
        assert_eq!(
            env_flags(),
            want,
            "a flag with an environment variable was added or removed: test that the flag wins over it below"
        );
        // clap counts a value from the environment as the flag given, so a declared conflict
        // with an environment-backed flag would refuse a flag the user typed.
        let top = Cli::command();
        for command in std::iter::once(&top).chain(top.get_subcommands()) {
            for arg in command.get_arguments() {
                for other in command.get_arg_conflicts_with(arg) {
                    assert!(
                        arg.get_env().is_none() && other.get_env().is_none(),
                        "{} declares a conflict with {}: one of them has an environment variable",
                        arg.get_id(),
                        other.get_id()
                    );
                }
            }
        }
    }

    #[test]
    fn the_server_flag_wins_over_hemma_server() {
        let env = [("HEMMA_SERVER", "http://from-env:1")];
        for args in [
            &["--server", "http://from-flag:2", "info"][..],
            &["info", "--server", "http://from-flag:2"],
        ] {
            assert_eq!(parse_with(&env, args).unwrap().server, "http://from-flag:2");
        }
        assert_eq!(
            parse_with(&env, &["info"]).unwrap().server,
            "http://from-env:1"
        );
        assert_eq!(
            parse_with(&[], &["info"]).unwrap().server,
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn the_cache_flag_wins_over_hemma_cache() {
        let env = [("HEMMA_CACHE", "/from/env")];
        let mut args = EXTRACT.to_vec();
        args.extend(["--cache", "/from/flag"]);
        let cli = parse_with(&env, &args).unwrap();
        assert_eq!(extract_cache(&cli), (Some("/from/flag".into()), false));
        let cli = parse_with(&env, &EXTRACT).unwrap();
        assert_eq!(extract_cache(&cli), (Some("/from/env".into()), false));
        let doctor = |args: &[&str]| match parse_with(&env, args).unwrap().command {
            Command::Doctor { cache } => cache,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            doctor(&["doctor", "--cache", "/from/flag"]),
            Some("/from/flag".into())
        );
        assert_eq!(doctor(&["doctor"]), Some("/from/env".into()));
    }

    #[test]
    fn no_cache_wins_over_hemma_cache_but_not_over_a_typed_cache() {
        let mut args = EXTRACT.to_vec();
        args.push("--no-cache");
        for env in [&[("HEMMA_CACHE", "/from/env")][..], &[]] {
            let cli = parse_with(env, &args).unwrap();
            assert_eq!(extract_cache(&cli), (None, true));
        }
        args.extend(["--cache", "/from/flag"]);
        for env in [&[("HEMMA_CACHE", "/from/env")][..], &[]] {
            let err = parse_with(env, &args).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
            let text = err.to_string();
            assert!(
                text.contains("'--no-cache' cannot be used with '--cache <CACHE>'"),
                "{text}"
            );
        }
    }
}
