#!/usr/bin/env bash
# Embedding throughput benchmark: ONNX Runtime CPU and candle vs torch, same weights, same tokens,
# same threads. Builds a random-init DeBERTa-v3-base (real architecture and size) once, because the
# real weights need the Hugging Face Hub; throughput does not depend on the weight values.
#
#   benches/run.sh [--essays 24] [--batch-size 8] [--threads 2] [--skip-candle]
#
# Python (torch, transformers 4.x, ...): HEMMA_BENCH_PYTHON, else .cache/bench-venv (created from
# models/requirements.txt on first use; torch is a large download).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup-ort.sh)"
py=${HEMMA_BENCH_PYTHON:-}
if [ -z "$py" ]; then
  py=$PWD/.cache/bench-venv/bin/python  # absolute: cargo bench runs in tests/
  if [ ! -x "$py" ]; then
    python3 -m venv .cache/bench-venv
    "$py" -m pip install -q -r models/requirements.txt
  fi
fi
model=$PWD/.cache/models/deberta-v3-base-random  # absolute: cargo bench runs in tests/
if [ ! -f "$model/manifest.json" ]; then
  "$py" models/export_deberta.py --random-init --skip-fp16 \
    --tokenizer tests/fixtures/tiny-deberta/tokenizer.json --out "$model"
fi
HEMMA_BENCH_PYTHON="$py" cargo bench --bench embed_throughput -- --model-dir "$model" "$@"
