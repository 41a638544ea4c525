#!/usr/bin/env bash
# One-shot GPU check: does the CUDA path compute what the CPU computes, and how fast is it against
# torch on the same card? For a lent NVIDIA card (H100/H200) that reaches no package registry.
#
#   benches/gpu.sh --prepare                    here: release binaries into .device/bin (carried)
#   benches/gpu.sh ORT_DYLIB_PATH MODEL_DIR     on the device (OUT: where results go, as they come)
#   benches/gpu.sh --cpu-dry-run ORT_DYLIB_PATH MODEL_DIR   the same path on the CPU (CI)
#
# Steps, each writing to $OUT (default MODEL_DIR/gpu-check) before the next starts:
#   1. model      MODEL_DIR/manifest.json, else a random-init DeBERTa-v3-base built there with the
#                 machine's torch (models/export_deberta.py, the committed tokenizer.json; the
#                 device image's transformers 5 breaks DeBERTa's own tokenizer). Dry run: the tiny
#                 test fixture is copied there instead.
#   2. cls graph  model(.fp16).cls.onnx: only the CLS rows leave the device (benches/gpu/cls_graph.py)
#   3. selftest   `hemma-offload selftest --provider cuda`, fp32 and fp16 (vectors vs ORT CPU fp32)
#   4. ort        gpu_embed: essays/s at --seq 512, batches of 16, inputs bound per batch, fp32 and
#                 fp16, and the fp16-vs-fp32 cosine (benches/gpu_embed.rs)
#   5. torch      eager fp32 and fp16 on the same batches and card, and ORT-vs-torch differences
#                 (benches/gpu/torch_eager.py); skipped with a line where torch is absent
# then prints one table. ORT_DYLIB_PATH: an onnxruntime-gpu library (benches/gpu/ort-cuda-parts.sh
# brings one in parts; its unpack.sh writes an env.sh that also sets LD_LIBRARY_PATH).
# Binaries: HEMMA_GPU_BIN (a folder with hemma-offload and gpu_embed), else .device/bin, else (dry
# run) built here in the dev profile.
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds the gpu_embed bench (extra cargo flags in "$@", e.g. a profile) and prints the path of its executable.
gpu_embed_exe() {
  cargo bench "$@" --no-run -q -p hemma-e2e --bench gpu_embed --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu_embed" and m.get("executable"):
        print(m["executable"])'
}

dry=0
case "${1:-}" in
  --prepare)
    # Release builds of the two binaries the check runs, where the device call can carry them.
    cargo build --release -q -p hemma-server
    exe=$(gpu_embed_exe)  # the bench profile: optimised, like release
    mkdir -p .device/bin
    cp target/release/hemma-offload "$exe" .device/bin/
    mv .device/bin/"$(basename "$exe")" .device/bin/gpu_embed
    grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
    ls -la .device/bin
    exit 0 ;;
  --cpu-dry-run) dry=1; shift ;;
esac
[ $# -eq 2 ] || { sed -n 2,23p "$0"; exit 2; }
ort_dylib=$(realpath "$1")
model=$(realpath -m "$2")
[ -f "$ort_dylib" ] || { echo "gpu.sh: no ONNX Runtime library at $1" >&2; exit 2; }
out=${OUT:-$model/gpu-check}
mkdir -p "$model" "$out"
results="$out/results.jsonl"
: > "$results"
say() { echo "gpu.sh: $*" | tee -a "$out/log.txt" >&2; }

if [ "$dry" = 1 ]; then
  provider=cpu; device=cpu; seq=512; batch=4; batches=2
else
  provider=cuda; device=cuda; seq=512; batch=16; batches=8
fi

# Binaries.
bin=${HEMMA_GPU_BIN:-}
if [ -z "$bin" ] && [ -x .device/bin/gpu_embed ] && [ "$dry" = 0 ]; then bin=.device/bin; fi
if [ -z "$bin" ]; then
  [ "$dry" = 1 ] || { echo "gpu.sh: no binaries: run benches/gpu.sh --prepare here and carry .device/bin" >&2; exit 2; }
  cargo build -q -p hemma-server
  exe=$(gpu_embed_exe --profile dev)
  bin=$(mktemp -d)
  ln -s "$(pwd)/target/debug/hemma-offload" "$bin/hemma-offload"
  ln -s "$exe" "$bin/gpu_embed"
fi

# 1. Model.
if [ ! -f "$model/manifest.json" ]; then
  if [ "$dry" = 1 ]; then
    cp tests/fixtures/tiny-deberta/* "$model/"
    say "model: the tiny test fixture (dry run)"
  else
    say "model: building a random-init DeBERTa-v3-base in $model with $(python3 -c 'import torch; print("torch", torch.__version__)')"
    python3 models/export_deberta.py --random-init --skip-cpu-graph \
      --tokenizer tests/fixtures/tiny-deberta/tokenizer.json --out "$model" 2>&1 | tail -5 | tee -a "$out/log.txt" >&2
  fi
fi

# 2. The CLS-only graphs.
python3 benches/gpu/cls_graph.py "$model" 2>&1 | tee -a "$out/log.txt" >&2

# 3. Self-test of the provider, both precisions.
status=0
for precision in fp32 fp16; do
  if "$bin/hemma-offload" selftest --model-dir "$model" --engine ort --provider "$provider" \
      --precision "$precision" --ort-dylib "$ort_dylib" > "$out/selftest-$precision.txt" 2>&1; then
    say "selftest $provider $precision: pass"
  else
    say "selftest $provider $precision: FAILED"; status=1
  fi
  tail -3 "$out/selftest-$precision.txt" >&2
done

# 4. ONNX Runtime, CLS rows only.
"$bin/gpu_embed" --model-dir "$model" --provider "$provider" --ort-dylib "$ort_dylib" \
  --seq "$seq" --batch "$batch" --batches "$batches" --out "$out" | tee -a "$results"

# 5. torch eager on the same batches.
if python3 -c 'import torch, transformers, safetensors' 2>/dev/null; then
  python3 benches/gpu/torch_eager.py --model-dir "$model" --tokens "$out/tokens.json" \
    --device "$device" --out "$out" | tee -a "$results"
else
  say "torch: not installed here, skipped (the dry run checks the ORT path only)"
fi

python3 - "$results" <<'TABLE' | tee "$out/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
speed = {(r["engine"], r["precision"]): r for r in rows if "essays_per_s" in r}
for (engine, precision), r in speed.items():
    print(f"{engine:<6} {precision:<5} {r.get('provider', r.get('device'))}  seq {r['seq']} batch {r['batch']}: "
          f"{r['essays_per_s']:10.2f} essays/s  ({r['seconds_per_batch'] * 1000:.1f} ms per batch)")
for precision in ("fp32", "fp16"):
    o, t = speed.get(("ort", precision)), speed.get(("torch", precision))
    if o and t:
        print(f"ratio ort/torch {precision}: {o['essays_per_s'] / t['essays_per_s']:.2f}x")
for r in rows:
    if "compare" in r:
        print(f"{r.get('engine', '')} {r['compare']}: " + ", ".join(f"{k} {v:.6f}" for k, v in r.items()
                                                                   if isinstance(v, float)))
TABLE
exit $status
