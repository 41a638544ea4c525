#!/usr/bin/env python3
"""The torch half of the one-shot GPU check (benches/gpu.sh): DebertaV2Model in eager mode, fp32
and fp16, on exactly the token batches benches/gpu_embed.rs ran (OUT/tokens.json), on one device.

  python3 benches/gpu/torch_eager.py --model-dir DIR --tokens OUT/tokens.json [--device cuda]
      [--precisions fp32,fp16] [--warmup 2] [--out OUT]

Prints one JSON line per precision (essays/s, seconds per batch), one comparing torch fp16 with
torch fp32, and, where OUT/cls_ort_<precision>.npy exists, one comparing ONNX Runtime with torch
at that precision (largest absolute difference, smallest cosine). Timing synchronises the
device before and after; only the CLS rows are copied back to the host, as on the ORT side.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def cosines(a, b):
    import numpy as np
    a, b = a.astype(np.float64), b.astype(np.float64)
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.min()), float(c.mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True, type=Path)
    ap.add_argument("--tokens", required=True, type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", default="fp32,fp16")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "baselines"))
    from torch_embed import load_model  # the checkpoint loading of the CPU benchmark

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    batches = json.loads(args.tokens.read_text())["batches"]
    ids = [torch.tensor(b, dtype=torch.int64) for b in batches]
    mask = torch.ones_like(ids[0])
    cls = {}
    for precision in args.precisions.split(","):
        dtype = {"fp32": torch.float32, "fp16": torch.float16}[precision]
        # Loaded afresh: a module's .to(dtype) rounds its own weights in place.
        model = load_model(args.model_dir).to(device=device, dtype=dtype).eval()
        with torch.inference_mode():
            for k in range(args.warmup):
                model(input_ids=ids[k % len(ids)].to(device), attention_mask=mask.to(device))
            sync()
            rows = []
            t0 = time.perf_counter()
            for b in ids:
                out = model(input_ids=b.to(device), attention_mask=mask.to(device)).last_hidden_state
                rows.append(out[:, 0, :].float().cpu())
            sync()
            seconds = time.perf_counter() - t0
        cls[precision] = torch.cat(rows).numpy()
        np.save(args.out / f"cls_torch_{precision}.npy", cls[precision])
        n = sum(len(b) for b in batches)
        print(json.dumps({"engine": "torch", "device": str(device), "precision": precision,
                          "seq": len(batches[0][0]), "batch": len(batches[0]), "batches": len(batches),
                          "seconds_per_batch": seconds / len(batches), "essays_per_s": n / seconds,
                          "torch": torch.__version__,
                          "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}),
              flush=True)
        del model
    if "fp32" in cls and "fp16" in cls:
        lo, mean = cosines(cls["fp32"], cls["fp16"])
        print(json.dumps({"engine": "torch", "compare": "fp16 vs fp32", "min_cosine": lo, "mean_cosine": mean}),
              flush=True)
    for precision, ours in cls.items():
        ort_file = args.out / f"cls_ort_{precision}.npy"
        if ort_file.is_file():
            theirs = np.load(ort_file)
            lo, _ = cosines(theirs, ours)
            print(json.dumps({"compare": f"ort vs torch {precision}", "min_cosine": lo,
                              "max_abs_diff": float(np.abs(theirs - ours).max())}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
