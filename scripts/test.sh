#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy (warnings are errors) and the whole test suite.
# Fetches the ONNX Runtime library on first use (scripts/setup-ort.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup-ort.sh)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
