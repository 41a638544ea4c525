#!/usr/bin/env bash
# The main job on a fresh machine: build, start a real LanguageTool (when Java 17+ and Maven are
# installed) and the server on the bundled tiny model, extract every feature of the sample essays
# with `hemma extract` (embeddings + the 25 handcrafted features), print the server's Info and
# `hemma doctor`, and stop everything.
#
#   scripts/demo.sh [INPUT.jsonl|.csv] [OUT_DIR]      (defaults: examples/essays.jsonl out)
#
# OUT_DIR gets embeddings.npy, handcrafted.npy, ids.txt and meta.json. The local cache is
# $HEMMA_CACHE (default ~/.cache/hemma): run it twice and the second run computes nothing.
# HEMMA_DEMO_LANGUAGETOOL=0 skips LanguageTool (then only the embeddings are extracted).
#
# MODEL_DIR=... uses another model folder (e.g. an export of microsoft/deberta-v3-base);
# HEMMA_ENGINE=candle runs the pure-Rust engine instead of ONNX Runtime; HEMMA_DEMO_PORT picks
# another port than 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
input=${1:-examples/essays.jsonl}
out=${2:-out}
model=${MODEL_DIR:-tests/fixtures/tiny-deberta}
port=${HEMMA_DEMO_PORT:-9000}
eval "$(scripts/setup-ort.sh)"
cargo build -q -p hemma-server -p hemma-cli
bin=target/debug
log=$(mktemp)
lt_args=()
lt_port=
if [ "${HEMMA_DEMO_LANGUAGETOOL:-1}" != 0 ] && command -v java >/dev/null && command -v mvn >/dev/null; then
  lt_port=${HEMMA_DEMO_LANGUAGETOOL_PORT:-18181}
  trap 'scripts/languagetool.sh stop $lt_port' EXIT
  eval "$(scripts/languagetool.sh start "$lt_port")"
  lt_args=(--languagetool-url "$HEMMA_TEST_LANGUAGETOOL_URL")
else
  echo "demo: not starting LanguageTool (needs Java 17+ and Maven, or HEMMA_DEMO_LANGUAGETOOL=0 was set)" >&2
fi
"$bin/hemma-offload" serve --model-dir "$model" --listen "127.0.0.1:$port" "${lt_args[@]}" >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true; [ -z "$lt_port" ] || scripts/languagetool.sh stop $lt_port' EXIT
export HEMMA_SERVER="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  if "$bin/hemma" health >/dev/null 2>&1; then break; fi
  if ! kill -0 $server 2>/dev/null; then echo "server exited:"; cat "$log"; exit 1; fi
  sleep 0.2
done
"$bin/hemma" health
"$bin/hemma" info
set=combined
[ ${#lt_args[@]} -gt 0 ] || set=embeddings
"$bin/hemma" extract --input "$input" --feature-set "$set" --out "$out"
"$bin/hemma" doctor || true
ls -l "$out"
echo "server log: $log"
