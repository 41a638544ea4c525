#!/usr/bin/env python3
"""PyTorch baseline for the hemma-offload embedding throughput benchmark.

Runs DebertaV2Model (fp32, CPU, torch.inference_mode) on exactly the token-id batches the
Rust benchmark used and prints ONE JSON line to stdout:

  {"engine": "torch", "essays": n, "seconds": s, "essays_per_s": x, "torch": "...",
   "threads": N, "rss_mb": peak_rss, ...}

  essays        sequences per pass (all rows of all batches in --tokens)
  seconds       mean wall time of one timed pass over all batches (--repeats passes)
  essays_per_s  essays / seconds
  rss_mb        peak resident set size of this process (MiB)

Inputs:
  --model-dir DIR   folder written by models/export_deberta.py (config.json + model.safetensors;
                    'deberta.'-prefixed task checkpoints are accepted too)
  --tokens FILE     JSON {"batches": [[[ids...], [ids...]], ...]}; each batch is padded to its
                    longest row with id 0 and attention mask 0
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def load_model(model_dir: Path):
    import torch
    from safetensors.torch import load_file
    from transformers import DebertaV2Config, DebertaV2Model

    config = DebertaV2Config.from_json_file(str(model_dir / "config.json"))
    state = load_file(str(model_dir / "model.safetensors"))
    state = {(k[len("deberta."):] if k.startswith("deberta.") else k): v for k, v in state.items()}
    with torch.device("meta"):
        model = DebertaV2Model(config)
    model = model.to_empty(device="cpu")
    expected = set(model.state_dict())
    missing = expected - set(state)
    if missing:
        raise SystemExit(f"model.safetensors lacks {sorted(missing)[:10]}")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=True, assign=True)
    # non-persistent buffers are not in the checkpoint; rebuild them on CPU
    emb = model.embeddings
    if hasattr(emb, "position_ids"):
        emb.position_ids = torch.arange(config.max_position_embeddings).expand((1, -1))
    return model.float().eval()


def pad(batch, torch):
    n = max(len(x) for x in batch)
    ids = torch.zeros((len(batch), n), dtype=torch.int64)
    mask = torch.zeros((len(batch), n), dtype=torch.int64)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.int64)
        mask[i, : len(x)] = 1
    return ids, mask


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True, type=Path)
    ap.add_argument("--tokens", required=True, type=Path)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    ap.add_argument("--warmup", type=int, default=1, help="batches run untimed first (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=1, help="timed passes over all batches (default %(default)s)")
    ap.add_argument("--dump-cls", type=Path, help="write the CLS matrix [essays, dim] (float32 .npy)")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    batches = json.loads(args.tokens.read_text())["batches"]
    batches = [b for b in batches if b]
    if not batches:
        raise SystemExit("no batches in --tokens")
    model = load_model(args.model_dir)
    tensors = [pad(b, torch) for b in batches]
    essays = sum(len(b) for b in batches)

    with torch.inference_mode():
        for i in range(args.warmup):
            ids, mask = tensors[i % len(tensors)]
            model(input_ids=ids, attention_mask=mask)

        times, cls = [], None
        for _ in range(max(1, args.repeats)):
            rows = []
            t0 = time.perf_counter()
            for ids, mask in tensors:
                out = model(input_ids=ids, attention_mask=mask).last_hidden_state
                rows.append(out[:, 0, :].clone())
            times.append(time.perf_counter() - t0)
            cls = rows

    seconds = sum(times) / len(times)
    if args.dump_cls:
        np.save(args.dump_cls, torch.cat(cls).float().numpy())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(json.dumps({
        "engine": "torch",
        "essays": essays,
        "seconds": round(seconds, 6),
        "essays_per_s": round(essays / seconds, 4),
        "torch": torch.__version__,
        "threads": threads,
        "rss_mb": round(rss_mb, 1),
        "batches": len(batches),
        "warmup": args.warmup,
        "repeats": max(1, args.repeats),
        "seconds_each": [round(t, 6) for t in times],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
