//! Records the git commit the binary was built from (`Info.git_sha`); `HEMMA_GIT_SHA` overrides
//! it where there is no `.git` (e.g. a Docker build context).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HEMMA_GIT_SHA");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    let sha = std::env::var("HEMMA_GIT_SHA").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=HEMMA_GIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );
}
