#!/usr/bin/env bash
# The main job on a fresh machine: build, start the server on the bundled tiny model, embed the
# sample essays with the `hemma` CLI, print the server's Info, and stop the server.
#
#   scripts/demo.sh [INPUT.jsonl|.csv] [OUT.npy]      (defaults: examples/essays.jsonl out/embeddings.npy)
#
# MODEL_DIR=... uses another model folder (e.g. an export of microsoft/deberta-v3-base);
# HEMMA_ENGINE=candle runs the pure-Rust engine instead of ONNX Runtime; HEMMA_DEMO_PORT picks
# another port than 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
input=${1:-examples/essays.jsonl}
out=${2:-out/embeddings.npy}
model=${MODEL_DIR:-tests/fixtures/tiny-deberta}
port=${HEMMA_DEMO_PORT:-9000}
eval "$(scripts/setup-ort.sh)"
cargo build -q -p hemma-offload -p hemma-client
bin=target/debug
log=$(mktemp)
"$bin/hemma-offload" serve --model-dir "$model" --listen "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
export HEMMA_SERVER="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  if "$bin/hemma" health >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "server exited:"; cat "$log"; exit 1; fi
  sleep 0.2
done
"$bin/hemma" health
"$bin/hemma" info
"$bin/hemma" embed --input "$input" --out "$out"
echo "server log: $log"
