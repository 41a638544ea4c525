//! The cross-crate end-to-end tests: a real server on a loopback port (tiny model, real
//! LanguageTool, the fake LanguageTool for faults) driven by the real client, plus the checks of
//! the docs, Docker files and crate boundaries. They are ONE test binary with a module per area
//! because each binary links the whole server: one binary instead of a dozen saves minutes of
//! linking and gigabytes of disk (a CI run once ran out of it).

mod boundaries;
mod compat_http;
mod docker;
mod docs;
mod embed_api;
mod embed_parity;
mod extract_api;
mod grammar_fake;
mod grammar_languagetool;
mod hostile;
mod multi_server;
mod startup;

/// The output of `cargo ARGS` in the repository (offline: it reads the lock file and the local
/// registry only); fails the test with cargo's own message.
fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(args)
        .arg("--offline")
        .current_dir(hemma_e2e::repo_root())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
