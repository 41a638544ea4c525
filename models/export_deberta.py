#!/usr/bin/env python3
"""Export DeBERTa-v3 (microsoft/deberta-v3-base) for the hemma-offload Rust server.

Writes one folder (``--out DIR``) with:

  model.onnx         fp32 ONNX (legacy TorchScript exporter, opset 17; inputs
                     ``input_ids``/``attention_mask`` int64 [batch, seq], output
                     ``last_hidden_state`` float32 [batch, seq, hidden])
  model.fp16.onnx    the same graph converted to fp16 with fp32 inputs/outputs
                     (skipped with ``--skip-fp16``)
  model.cpu.onnx     the [CLS] rows only (output [batch, 1, hidden]), rearranged for
                     ONNX Runtime's CPU provider (models/deberta_cls_cpu.py); the
                     server uses it instead of model.onnx for ORT on the CPU in fp32
  model.safetensors  state dict of ``DebertaV2Model`` (no ``deberta.`` prefix)
  config.json        full ``DebertaV2Config`` (model_type "deberta-v2")
  tokenizer.json     fast tokenizer converted from ``spm.model`` with
                     transformers 4.x (never transformers 5 ``save_pretrained``,
                     whose DeBERTa tokenizer drops the spm normalizer)
  manifest.json      format/dims/versions and the sha256 of every file above

Sources of weights:
  * real model: ``--source PATH`` is either a folder holding config.json,
    spm.model and pytorch_model.bin / model.safetensors, or a Hugging Face cache
    (hub root, or the ``models--microsoft--deberta-v3-base`` folder) holding
    ``--model-id``.  Without ``--source`` the default Hugging Face cache is tried
    (offline; nothing is downloaded).
  * ``--random-init``: the deberta-v3-base architecture with random weights
    (``--seed``); the tokenizer then comes from ``--tokenizer tokenizer.json``
    because no real spm.model is available offline.

After writing, the script runs ONNX Runtime (fp32 and fp16) and torch on a few
texts and prints the max abs difference of the CLS vectors.

The functions here are also used by ``make_tiny_fixture.py`` (the test fixture
in tests/fixtures/tiny-deberta).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_MODEL_ID = "microsoft/deberta-v3-base"

# The values of microsoft/deberta-v3-base's config.json.
BASE_CONFIG = dict(
    vocab_size=128100,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=512,
    type_vocab_size=0,
    initializer_range=0.02,
    layer_norm_eps=1e-7,
    relative_attention=True,
    max_relative_positions=-1,
    position_buckets=256,
    norm_rel_ebd="layer_norm",
    share_att_key=True,
    pos_att_type=["p2c", "c2p"],
    position_biased_input=False,
    pad_token_id=0,
)

# Non-optional fields of candle-transformers' debertav2::Config (plus model_type).
CANDLE_REQUIRED_CONFIG_KEYS = [
    "model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
    "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps",
    "relative_attention", "max_relative_positions", "position_biased_input", "pos_att_type",
    "pad_token_id", "position_buckets", "share_att_key", "norm_rel_ebd",
]

# Texts for the ORT-vs-torch check when the caller gives none.
DEFAULT_CHECK_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Technology can distract many people from the real world.\n\nFor example, my brother "
    "is a good student, but when he uses his phone he loses interest in school.",
    "  Ｆｕｌｌ－ｗｉｄｔｈ  text,\ttabs and the ﬁnal café.  ",
    " ".join(["Students should be allowed to choose their own classes because"] * 80),
]


# --------------------------------------------------------------------------- utils

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict:
    import onnx
    import onnxruntime
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- model

def make_config(**overrides):
    """DebertaV2Config with the deberta-v3-base values, optionally overridden."""
    from transformers import DebertaV2Config

    values = dict(BASE_CONFIG)
    values.update(overrides)
    config = DebertaV2Config(**values)
    config.architectures = ["DebertaV2Model"]
    return config


def build_random_model(config, seed: int):
    """DebertaV2Model with seeded random weights (transformers' own init), eval mode."""
    from transformers import DebertaV2Model

    torch.manual_seed(seed)
    model = DebertaV2Model(config)
    return model.float().eval()


def resolve_source(source: str | None, model_id: str) -> Path:
    """Find the folder with config.json for a local folder or a Hugging Face cache."""
    repo_dir = "models--" + model_id.replace("/", "--")
    if source is None:
        try:
            from huggingface_hub.constants import HF_HUB_CACHE
        except ImportError:  # pragma: no cover
            HF_HUB_CACHE = os.path.expanduser("~/.cache/huggingface/hub")
        roots = [Path(HF_HUB_CACHE)]
    else:
        roots = [Path(source).expanduser()]
    for root in roots:
        if (root / "config.json").is_file():
            return root
        for cand in (root / repo_dir, root / "hub" / repo_dir, root):
            snaps = cand / "snapshots"
            if not snaps.is_dir():
                continue
            ref = cand / "refs" / "main"
            if ref.is_file():
                snap = snaps / ref.read_text().strip()
                if (snap / "config.json").is_file():
                    return snap
            for snap in sorted(snaps.iterdir()):
                if (snap / "config.json").is_file():
                    return snap
    raise SystemExit(
        f"no checkpoint of {model_id} found under {[str(r) for r in roots]} "
        "(need config.json + spm.model + pytorch_model.bin or model.safetensors)"
    )


def load_pretrained_model(folder: Path):
    """Load DebertaV2Model from a checkpoint folder (accepts 'deberta.'-prefixed task checkpoints)."""
    from transformers import DebertaV2Model

    model, info = DebertaV2Model.from_pretrained(str(folder), output_loading_info=True, local_files_only=True)
    if info.get("missing_keys"):
        raise SystemExit(f"checkpoint in {folder} lacks weights: {info['missing_keys'][:10]}")
    if info.get("unexpected_keys"):
        log(f"ignored {len(info['unexpected_keys'])} non-encoder tensors (e.g. {info['unexpected_keys'][:3]})")
    model.config.architectures = ["DebertaV2Model"]
    return model.float().eval()


# --------------------------------------------------------------------------- tokenizer

def tokenizer_from_spm(spm_path: Path):
    """Convert a DeBERTa-v3 spm.model to a `tokenizers.Tokenizer` with transformers 4.x.

    Uses DebertaV2TokenizerFast(vocab_file=...), i.e. DebertaV2Converter plus the
    special tokens ([PAD] [CLS] [SEP] [UNK] [MASK]) registered as added tokens,
    the same as the hub's tokenizer.json for DeBERTa-v3.
    """
    import transformers
    from transformers import DebertaV2TokenizerFast

    if int(transformers.__version__.split(".")[0]) >= 5:
        raise SystemExit("use transformers 4.x for the tokenizer conversion (v5 drops the spm normalizer)")
    from tokenizers import AddedToken

    fast = DebertaV2TokenizerFast(vocab_file=str(spm_path), do_lower_case=False)
    tok = fast.backend_tokenizer
    # A special token that is also a user-defined spm piece (e.g. [MASK] in the tiny fixture's
    # spm.model) comes out of the converter as a non-special added token; mark it special as in
    # the hub's DeBERTa-v3 tokenizer.json. Ids do not change.
    added = {t.content: t for t in tok.get_added_tokens_decoder().values()}
    for name in fast.all_special_tokens:
        t = added.get(name)
        if t is not None and not t.special:
            tok.add_special_tokens([AddedToken(name, special=True, normalized=t.normalized,
                                               lstrip=t.lstrip, rstrip=t.rstrip, single_word=t.single_word)])
    tok.no_truncation()
    tok.no_padding()
    return tok


def load_tokenizer_json(path: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def encode(tok, text: str, max_length: int) -> list[int]:
    """Token ids with [CLS]/[SEP], truncated to max_length (tokenizer left unchanged)."""
    tok.enable_truncation(max_length=max_length)
    try:
        return tok.encode(text).ids
    finally:
        tok.no_truncation()


# --------------------------------------------------------------------------- running

def pad_batch(batch: list[list[int]], pad_id: int = 0):
    n = max(len(x) for x in batch)
    ids = np.full((len(batch), n), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), n), dtype=np.int64)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return ids, mask


@torch.inference_mode()
def torch_cls(model, batch: list[list[int]]) -> np.ndarray:
    """CLS rows of last_hidden_state for one padded batch (pad 0, mask 0 on padding)."""
    ids, mask = pad_batch(batch)
    out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    return out[:, 0, :].float().numpy()


def ort_cls(session, batch: list[list[int]]) -> np.ndarray:
    ids, mask = pad_batch(batch)
    (out,) = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})
    return out[:, 0, :].astype(np.float32)


class _LastHidden(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


# --------------------------------------------------------------------------- export steps

def export_onnx(model, path: Path) -> None:
    """Legacy TorchScript exporter, opset 17, dynamic batch/seq (see ENGINE-NOTES.md)."""
    model.eval()
    _export(_LastHidden(model).eval(), model.config.vocab_size, path, {0: "batch", 1: "seq"})


def _export(module, vocab: int, path: Path, output_axes: dict) -> None:
    """`module(input_ids, attention_mask)` -> `last_hidden_state` to ONNX at `path` (legacy
    exporter, opset 17, dynamic batch and sequence), attention gather indices narrowed to int32."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, min(vocab, 1000), (2, 16), generator=g, dtype=torch.int64)
    ids[:, 0] = 1
    ids[:, -1] = 2
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    axes = {0: "batch", 1: "seq"}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # benign TracerWarnings (torch.tensor constants, frozen branches)
        torch.onnx.export(
            module,
            (ids, mask),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": output_axes},
            do_constant_folding=True,
        )
    narrow_gather_indices(path)
    import onnx

    onnx.checker.check_model(str(path))


def narrow_gather_indices(path: Path) -> int:
    """Casts the relative-position index of each DeBERTa attention gather to int32 before it is
    expanded to [batch*heads, seq, seq].

    torch.gather takes a broadcast *view* of that index; ONNX Runtime materialises the Expand,
    about 100 MB of int64 per layer and gather at 8 x 512. int32 halves that traffic: +7% essays/s
    on CPU at 512 tokens (python ORT, 2 threads), bit-identical outputs. Positions are < 2^31.
    Returns how many gathers were changed.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    expands = []
    for node in graph.node:
        if node.op_type != "GatherElements":
            continue
        expand = producers.get(node.input[1])
        if expand is not None and expand.op_type == "Expand" and expand not in expands:
            expands.append(expand)
    for expand in expands:
        narrowed = expand.name + "_index_i32"
        cast = helper.make_node("Cast", [expand.input[0]], [narrowed], to=TensorProto.INT32,
                                name=expand.name + "_cast_i32")
        expand.input[0] = narrowed
        graph.node.insert(list(graph.node).index(expand), cast)
    changed = {e.output[0] for e in expands}
    kept = [v for v in graph.value_info if v.name not in changed]  # their dtype is now int32
    del graph.value_info[:]
    graph.value_info.extend(kept)
    onnx.save(model, str(path))
    log(f"narrowed {len(expands)} attention gather indices to int32")
    return len(expands)


def export_cpu_graph(model, path: Path) -> None:
    """model.cpu.onnx: models/deberta_cls_cpu.py exported as model.onnx is (same exporter, opset,
    dynamic batch/seq), with the same int32 gather indices; output [batch, 1, hidden]."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from deberta_cls_cpu import DebertaClsCpu

    _export(DebertaClsCpu(model.eval()).eval(), model.config.vocab_size, path, {0: "batch"})


def check_cpu_graph(model, tok, path: Path, texts: list[str], max_length: int) -> float:
    """Largest CLS difference of model.cpu.onnx (ORT CPU) from torch, per text and as one padded
    batch; fails above 1e-4."""
    import onnxruntime as ort

    batch = [encode(tok, t, max_length) for t in texts]
    ref = np.concatenate([torch_cls(model, [x]) for x in batch])
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    single = np.concatenate([ort_cls(sess, [x]) for x in batch])
    batched = ort_cls(sess, batch)
    worst = float(max(np.abs(single - ref).max(), np.abs(batched - ref).max()))
    log(f"  max abs diff ort_cpu_graph_vs_torch: {worst:.3g}")
    if worst > 1e-4:
        raise RuntimeError(f"{path.name} differs from torch by {worst:.3g} (> 1e-4)")
    return worst


def add_cpu_graph(folder: Path, texts: list[str] | None = None) -> dict:
    """Writes model.cpu.onnx into an exported folder (from its config.json and model.safetensors),
    checks it against torch, and lists it in manifest.json; the other files are not touched."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches" / "baselines"))
    from torch_embed import load_model

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    model = load_model(folder)
    tok = load_tokenizer_json(folder / "tokenizer.json")
    export_cpu_graph(model, folder / "model.cpu.onnx")
    check_cpu_graph(model, tok, folder / "model.cpu.onnx", texts or DEFAULT_CHECK_TEXTS, manifest["max_length"])
    manifest["files"]["model.cpu.onnx"] = sha256_file(folder / "model.cpu.onnx")
    with open(folder / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def convert_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and compute, fp32 inputs/outputs kept (keep_io_types=True)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = onnx.load(str(src))
    m16 = convert_float_to_float16(m, keep_io_types=True)
    onnx.save(m16, str(dst))


def save_safetensors(model, path: Path) -> None:
    """State dict of DebertaV2Model in save_pretrained naming (no 'deberta.' prefix)."""
    from safetensors.torch import save_file

    tensors = {}
    for k, v in model.state_dict().items():
        if k.startswith("deberta."):
            k = k[len("deberta."):]
        tensors[k] = v.detach().to(torch.float32).contiguous().clone()
    save_file(tensors, str(path), metadata={"format": "pt"})


def verify_safetensors(model, path: Path) -> None:
    from safetensors import safe_open

    sd = model.state_dict()
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        if keys != set(sd):
            raise RuntimeError(f"safetensors keys differ: {sorted(keys ^ set(sd))[:10]}")
        for k in keys:
            if not torch.equal(f.get_tensor(k), sd[k]):
                raise RuntimeError(f"safetensors tensor {k} differs")


def check_onnx(model, tok, out_dir: Path, texts: list[str], max_length: int, with_fp16: bool) -> dict:
    """ORT vs torch max abs diff of the CLS vectors, per text and as one padded batch."""
    import onnxruntime as ort

    batch = [encode(tok, t, max_length) for t in texts]
    ref_single = np.concatenate([torch_cls(model, [x]) for x in batch])
    ref_batch = torch_cls(model, batch)
    result = {"torch_batch_vs_single": float(np.abs(ref_batch - ref_single).max())}
    names = [("fp32", "model.onnx")] + ([("fp16", "model.fp16.onnx")] if with_fp16 else [])
    for label, name in names:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(out_dir / name), so, providers=["CPUExecutionProvider"])
        single = np.concatenate([ort_cls(sess, [x]) for x in batch])
        batched = ort_cls(sess, batch)
        result[f"ort_{label}_vs_torch_single"] = float(np.abs(single - ref_single).max())
        result[f"ort_{label}_vs_torch_batch"] = float(np.abs(batched - ref_single).max())
        if label == "fp16":
            cos = (single * ref_single).sum(1) / (
                np.linalg.norm(single, axis=1) * np.linalg.norm(ref_single, axis=1)
            )
            result["ort_fp16_min_cosine"] = float(cos.min())
        del sess
    lens = [len(x) for x in batch]
    log(f"check texts: {len(texts)} (token lengths {lens})")
    for k, v in result.items():
        log(f"  max abs diff {k}: {v:.3g}" if "cosine" not in k else f"  {k}: {v:.7f}")
    if result["ort_fp32_vs_torch_single"] > 1e-3 or result["ort_fp32_vs_torch_batch"] > 1e-3:
        raise RuntimeError(f"ONNX fp32 output differs from torch: {result}")
    return result


def export_all(
    model,
    tok,
    out_dir: Path,
    *,
    model_id: str,
    random_init: bool,
    max_length: int = 512,
    skip_fp16: bool = False,
    skip_cpu_graph: bool = False,
    check_texts: list[str] | None = None,
    tokenizer_file: Path | None = None,
) -> dict:
    """Write model.onnx, model.fp16.onnx, model.safetensors, config.json, tokenizer.json and
    manifest.json into out_dir; then check ORT vs torch. Returns the manifest.

    `tok` is the tokenizer used for the checks; it is saved as tokenizer.json unless
    `tokenizer_file` (the tokenizer.json it was loaded from) is given, which is copied instead."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    config = model.config
    written = []

    t = time.time()
    # save_pretrained-style (use_diff=True keeps every DeBERTa field, drops generic defaults).
    config.to_json_file(str(out_dir / "config.json"), use_diff=True)
    with open(out_dir / "config.json") as f:
        written_config = json.load(f)
    missing = [k for k in CANDLE_REQUIRED_CONFIG_KEYS if k not in written_config]
    if missing:
        raise RuntimeError(f"config.json lacks {missing}")
    written.append("config.json")
    tok.no_truncation()
    tok.no_padding()
    if tokenizer_file is not None:
        # Copy byte for byte: a load/save round trip through `tokenizers` can change the last
        # digit of Unigram scores (serde_json float parsing is not exactly round-trip).
        src = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
        if src.get("truncation") is not None or src.get("padding") is not None:
            raise ValueError(f"{tokenizer_file} enables truncation/padding; save it without them")
        shutil.copyfile(tokenizer_file, out_dir / "tokenizer.json")
    else:
        tok.save(str(out_dir / "tokenizer.json"))
    written.append("tokenizer.json")

    export_onnx(model, out_dir / "model.onnx")
    written.append("model.onnx")
    log(f"model.onnx written ({time.time() - t:.1f} s)")

    if not skip_cpu_graph:
        t = time.time()
        export_cpu_graph(model, out_dir / "model.cpu.onnx")
        written.append("model.cpu.onnx")
        log(f"model.cpu.onnx written ({time.time() - t:.1f} s)")

    stale = out_dir / "model.fp16.onnx"
    if skip_fp16:
        if stale.exists():
            stale.unlink()
    else:
        t = time.time()
        convert_fp16(out_dir / "model.onnx", out_dir / "model.fp16.onnx")
        written.append("model.fp16.onnx")
        log(f"model.fp16.onnx written ({time.time() - t:.1f} s)")

    t = time.time()
    save_safetensors(model, out_dir / "model.safetensors")
    verify_safetensors(model, out_dir / "model.safetensors")
    written.append("model.safetensors")
    log(f"model.safetensors written ({time.time() - t:.1f} s)")

    manifest = {
        "format": 1,
        "model_id": model_id,
        "architecture": "deberta-v2",
        "random_init": bool(random_init),
        "dim": int(config.hidden_size),
        "max_length": int(max_length),
        "vocab_size": int(config.vocab_size),
        "num_layers": int(config.num_hidden_layers),
        "pooling": "cls",
        "created_with": versions(),
        "files": {name: sha256_file(out_dir / name) for name in written},
    }
    with open(out_dir / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    t = time.time()
    check_onnx(model, tok, out_dir, check_texts or DEFAULT_CHECK_TEXTS, max_length, not skip_fp16)
    if not skip_cpu_graph:
        check_cpu_graph(model, tok, out_dir / "model.cpu.onnx", check_texts or DEFAULT_CHECK_TEXTS, max_length)
    log(f"checks done ({time.time() - t:.1f} s)")
    return manifest


# --------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=(
            "examples:\n"
            "  export_deberta.py --source ~/.cache/huggingface/hub --out models/deberta-v3-base\n"
            "  export_deberta.py --source /data/deberta-v3-base --out models/deberta-v3-base\n"
            "  export_deberta.py --random-init --tokenizer tests/fixtures/tiny-deberta/tokenizer.json \\\n"
            "      --out .cache/models/deberta-v3-base-random"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, help="output folder (created)")
    ap.add_argument("--add-cpu-graph", type=Path, metavar="DIR",
                    help="only add model.cpu.onnx to a folder this script wrote (from its safetensors)")
    ap.add_argument("--source", help="checkpoint folder (config.json, spm.model, weights) or Hugging Face cache dir; "
                    "default: the Hugging Face cache, offline")
    ap.add_argument("--model-id", default=DEFAULT_MODEL_ID, help="model id to look up in a cache and to record "
                    "(default %(default)s)")
    ap.add_argument("--random-init", action="store_true", help="deberta-v3-base architecture with random weights "
                    "(needs --tokenizer)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random-init (default %(default)s)")
    ap.add_argument("--tokenizer", type=Path, help="tokenizer.json to use instead of converting spm.model "
                    "(required with --random-init)")
    ap.add_argument("--max-length", type=int, default=512, help="max tokens incl. [CLS]/[SEP], recorded in the "
                    "manifest (default %(default)s)")
    ap.add_argument("--skip-fp16", action="store_true", help="do not write model.fp16.onnx")
    ap.add_argument("--skip-cpu-graph", action="store_true", help="do not write model.cpu.onnx (a GPU-only folder)")
    args = ap.parse_args(argv)
    if args.add_cpu_graph is not None:
        print(json.dumps(add_cpu_graph(args.add_cpu_graph), indent=2))
        return 0
    if args.out is None:
        ap.error("--out is required")

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.time()
    if args.random_init:
        if args.tokenizer is None:
            ap.error("--random-init needs --tokenizer PATH/tokenizer.json (no spm.model to convert)")
        tok = load_tokenizer_json(args.tokenizer)
        model = build_random_model(make_config(), args.seed)
        model_id = args.model_id if args.model_id != DEFAULT_MODEL_ID else "hemma/deberta-v3-base-random"
        if tok.get_vocab_size() > model.config.vocab_size:
            ap.error("tokenizer vocabulary larger than the model's")
    else:
        folder = resolve_source(args.source, args.model_id)
        log(f"loading {folder}")
        model = load_pretrained_model(folder)
        if args.tokenizer is not None:
            tok = load_tokenizer_json(args.tokenizer)
        elif (folder / "spm.model").is_file():
            tok = tokenizer_from_spm(folder / "spm.model")
        else:
            ap.error(f"no spm.model in {folder}; pass --tokenizer")
        model_id = args.model_id
    log(f"model ready ({time.time() - t0:.1f} s): hidden {model.config.hidden_size}, "
        f"{model.config.num_hidden_layers} layers, vocab {model.config.vocab_size}")

    manifest = export_all(
        model,
        tok,
        args.out,
        model_id=model_id,
        random_init=args.random_init,
        max_length=args.max_length,
        skip_fp16=args.skip_fp16,
        skip_cpu_graph=args.skip_cpu_graph,
        tokenizer_file=args.tokenizer,
    )
    log(f"done in {time.time() - t0:.1f} s -> {args.out}")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
