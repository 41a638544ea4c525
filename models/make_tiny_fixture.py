#!/usr/bin/env python3
"""Regenerate the test fixture tests/fixtures/tiny-deberta/ (a DeBERTa-v3 in miniature).

1. Trains a sentencepiece unigram model shaped like DeBERTa-v3's spm.model (nmt_nfkc,
   [PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3, [MASK] as user-defined symbol) on the essay texts of
   the ELLIPSE sample (--essays), single-threaded with a fixed seed, and converts it to
   tokenizer.json with transformers 4.x (same route as export_deberta.py).
2. Builds a tiny random DebertaV2Model (hidden 32, 2 layers, 2 heads, intermediate 64,
   position_buckets 16; otherwise the deberta-v3-base settings) and exports it with
   export_deberta.export_all: model.onnx, model.fp16.onnx, model.safetensors, config.json,
   tokenizer.json, manifest.json.
3. Writes reference.json (token ids from `tokenizers`, checked against sentencepiece, and
   torch fp32 CLS vectors: per text, and for one padded batch) and README.md.

Run from anywhere:  python models/make_tiny_fixture.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import export_deberta as ed  # noqa: E402  (shared export code)

MODEL_ID = "hemma/tiny-deberta-v3-random"
SEED = 1234
VOCAB = 2000
MAX_LENGTH = 512
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    position_buckets=16,
)


def read_essays(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def train_spm(essays: list[dict], out_path: Path) -> None:
    import sentencepiece as spm

    lines = []
    for e in essays:
        for line in e["text"].splitlines():
            line = line.strip()
            if line:
                lines.append(line)
    spm.set_random_generator_seed(SEED)
    buf = io.BytesIO()  # model_writer: no temp path ends up inside the model proto
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        model_type="unigram",
        vocab_size=VOCAB,
        normalization_rule_name="nmt_nfkc",
        character_coverage=1.0,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_piece="[PAD]",
        bos_piece="[CLS]",
        eos_piece="[SEP]",
        unk_piece="[UNK]",
        user_defined_symbols=["[MASK]"],
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        max_sentence_length=16384,
        minloglevel=2,
    )
    out_path.write_bytes(buf.getvalue())


def excerpt(text: str, max_chars: int) -> str:
    """Cut at a whitespace boundary (keeps the essay's own whitespace otherwise)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars)
    return text[: cut if cut > 0 else max_chars]


def pick_texts(essays: list[dict]):
    texts = [e["text"] for e in essays]
    para = next(t for t in texts if "\n\n" in t and "\r" not in t and len(t) > 900)
    crlf = next((t for t in texts if "\r\n\r\n" in t), None) or next(t for t in texts[1:] if "\n\n" in t)
    longest = max(texts, key=len)
    cases = [
        ("plain", "The quick brown fox jumps over the lazy dog."),
        ("essay_paragraphs", excerpt(para, 900)),
        ("essay_crlf" if "\r\n" in crlf else "essay_paragraphs_2", excerpt(crlf, 700)),
        ("double_spaces", "This  sentence   has double  spaces.    And    more  of   them."),
        ("tabs", "Tabs\tbetween\twords\t\tand a tab at the end\t"),
        ("leading_trailing_whitespace", "   \n\t  Leading and trailing whitespace.  \n \t "),
        ("nfkc_full_width", "ｆｕｌｌ－ｗｉｄｔｈ ＴＥＸＴ １２３ and the ﬁnal ﬁle, Ⅻ, ①"),
        ("accents", "Café naïve résumé façade, São Paulo, Ångström, coöperate."),
        ("mask", "The [MASK] sat on the mat.[MASK] Done [MASK]"),
        ("unknown_chars", "Emoji 😀 and 日本語 and Ελληνικά"),
        ("empty", ""),
        ("long_essay", longest),
    ]
    return cases, para, crlf, longest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--essays", type=Path, default=REPO / "../shared/data/essays/ellipse_sample.jsonl",
                    help="JSONL with a 'text' field per line (default %(default)s)")
    ap.add_argument("--out", type=Path, default=REPO / "tests/fixtures/tiny-deberta",
                    help="fixture folder (default %(default)s)")
    ap.add_argument("--skip-fp16", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import numpy as np
    import sentencepiece as spm
    import tokenizers
    import torch
    import transformers

    torch.set_num_threads(1)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    essays = read_essays(args.essays.resolve())

    # 1. tokenizer
    spm_path = out / "spm.model"
    train_spm(essays, spm_path)
    tok = ed.tokenizer_from_spm(spm_path)
    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    vocab = sp.get_piece_size()
    assert [sp.id_to_piece(i) for i in range(4)] == ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
    assert tok.token_to_id("[MASK]") == sp.piece_to_id("[MASK]")

    # 2. model + export (shared code)
    model = ed.build_random_model(ed.make_config(vocab_size=vocab, **TINY), SEED)
    cases, para, crlf, longest = pick_texts(essays)
    batch_texts = ["Short one.", excerpt(para, 300), cases[0][1] + " " + cases[3][1]]
    manifest = ed.export_all(
        model, tok, out, model_id=MODEL_ID, random_init=True, max_length=MAX_LENGTH,
        skip_fp16=args.skip_fp16, check_texts=[t for _, t in cases] + batch_texts,
    )
    tok = ed.load_tokenizer_json(out / "tokenizer.json")  # reference ids from the file as written

    # 3. reference.json
    def floats(a):
        return [float(x) for x in np.asarray(a, dtype=np.float32).tolist()]

    ref_cases, spm_mismatch = [], []
    for name, text in cases:
        ids = ed.encode(tok, text, MAX_LENGTH)
        full = tok.encode(text).ids
        if len(full) <= MAX_LENGTH:
            sp_ids = [1] + sp.encode(text) + [2]
            if sp_ids != ids:
                spm_mismatch.append(name)
                print(f"note: sentencepiece differs on {name!r}:\n  tokenizers {tok.encode(text).tokens}\n"
                      f"  spm        {[sp.id_to_piece(i) for i in sp_ids]}", file=sys.stderr)
        else:
            assert len(ids) == MAX_LENGTH and ids[0] == 1 and ids[-1] == 2 and ids[:-1] == full[:MAX_LENGTH - 1]
        cls = ed.torch_cls(model, [ids])[0]
        ref_cases.append({"name": name, "text": text, "ids": ids, "cls": floats(cls)})
    # [MASK] is a user-defined piece in this spm model but an added (special) token in tokenizers:
    # spm keeps the "▁" before it as its own piece, tokenizers does not (as in real DeBERTa-v3,
    # whose spm.model has no [MASK] at all). Every other case must agree.
    if set(spm_mismatch) - {"mask"}:
        raise SystemExit(f"tokenizers and sentencepiece disagree on {spm_mismatch}")

    truncation = []
    for text, n in [(longest, 16), (para, 24), (longest, 128), (cases[8][1] + " " + cases[6][1], 16)]:
        ids = ed.encode(tok, text, n)
        assert len(ids) <= n and ids[0] == 1 and ids[-1] == 2
        truncation.append({"text": text, "max_length": n, "ids": ids})

    batch_ids = [ed.encode(tok, t, MAX_LENGTH) for t in batch_texts]
    assert len({len(x) for x in batch_ids}) == 3
    batch_cls = ed.torch_cls(model, batch_ids)
    single = np.concatenate([ed.torch_cls(model, [x]) for x in batch_ids])
    print(f"torch padded batch vs single CLS max abs diff: {np.abs(batch_cls - single).max():.3g}", file=sys.stderr)

    reference = {
        "max_length": MAX_LENGTH,
        "dim": int(model.config.hidden_size),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "cases": ref_cases,
        "truncation": truncation,
        "batch": {"texts": batch_texts, "ids": batch_ids, "cls": [floats(r) for r in batch_cls]},
    }
    with open(out / "reference.json", "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=1)
        f.write("\n")

    write_readme(out, manifest, vocab, tok.token_to_id("[MASK]"), reference, spm_mismatch)
    print(f"fixture written to {out}")
    return 0


def write_readme(out: Path, manifest: dict, vocab: int, mask_id: int, reference: dict,
                 spm_mismatch: list[str]) -> None:
    import onnx
    import onnxruntime
    import sentencepiece
    import tokenizers

    files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "README.md")
    rows = []
    for name in files:
        data = (out / name).read_bytes()
        rows.append(f"| `{name}` | {len(data):,} | `{hashlib.sha256(data).hexdigest()}` |")
    v = manifest["created_with"]
    mask_note = (
        "The only case where `tokenizers` and `sentencepiece` give different ids is `mask`: `[MASK]` is a\n"
        "user-defined piece of spm.model (sentencepiece keeps the `▁` before it as a separate piece) and an\n"
        "added special token in tokenizer.json (split off before normalisation, no `▁`). The fast tokenizer's\n"
        "behaviour is the reference, as for the real model, whose spm.model has no `[MASK]` at all.\n"
        if spm_mismatch else "`tokenizers` and `sentencepiece` (+ the `[CLS] $A [SEP]` template) agree on every case.\n"
    )
    text = f"""# tiny-deberta: a DeBERTa-v3 in miniature (test fixture)

Random-weight `DebertaV2Model` with the deberta-v3-base architecture shrunk to hidden 32, 2 layers,
2 heads, intermediate 64, position_buckets 16 (relative attention, share_att_key, p2c+c2p,
layer_norm rel. embeddings, max_relative_positions -1, no absolute positions, layer_norm_eps 1e-7),
vocabulary {vocab} from its own sentencepiece unigram model (nmt_nfkc; [PAD]=0 [CLS]=1 [SEP]=2
[UNK]=3, [MASK]={mask_id}). It exists so the Rust side can test tokenisation, ONNX Runtime,
candle and batching against Python without the 700 MB real model. Its outputs mean nothing.

## Files

- `spm.model` – the sentencepiece model; `tokenizer.json` – converted from it with transformers
  {v['transformers']} (`DebertaV2TokenizerFast(vocab_file=...).backend_tokenizer`, i.e. the
  DeBERTa-v3 format: normalizer Sequence[Strip, Precompiled, Replace(" {{2,}}" -> " ")], Metaspace,
  Unigram, TemplateProcessing "[CLS] $A [SEP]").
- `model.onnx` (fp32), `model.fp16.onnx` (fp16 inside, fp32 inputs/outputs), `model.cpu.onnx`
  (the CLS-only CPU graph, docs/architecture.md; added to the committed fixture with
  `python models/export_deberta.py --add-cpu-graph tests/fixtures/tiny-deberta`), `model.safetensors`
  (no `deberta.` prefix), `config.json`, `manifest.json` – exactly what `models/export_deberta.py` writes.
- `reference.json` – expected values: `cases[]` (text, ids from `tokenizers.Tokenizer.from_file`
  with truncation at {reference['max_length']}, and the torch fp32 CLS vector `last_hidden_state[0, 0, :]` of that
  text alone), `truncation[]` (ids at max_length 16/24/128), `batch` (three texts run as ONE padded
  batch, pad id 0 and attention mask 0 on padding, with their ids and CLS rows). Floats are full
  precision (exact float32 values).

{mask_note}
## Regenerate

```sh
python models/make_tiny_fixture.py \\
    --essays ../shared/data/essays/ellipse_sample.jsonl --out tests/fixtures/tiny-deberta
```

(run from the repository root; pinned packages in `models/requirements.txt`). Training is
single-threaded with fixed seeds, so a rerun with the same versions reproduces the files.

Versions used: torch {v['torch']}, transformers {v['transformers']}, tokenizers {tokenizers.__version__},
sentencepiece {sentencepiece.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}.

| file | bytes | sha256 |
|---|---|---|
""" + "\n".join(rows) + """

## Licence

The tokenizer (`spm.model`, `tokenizer.json`) was trained on essay texts of the ELLIPSE corpus
(Crossley et al. 2023), licensed CC BY-NC-SA 4.0, and `reference.json` quotes essay excerpts: test
use only, non-commercial, same licence for derived data. The model weights are random (seeded)
and carry no information from any pretrained model.
"""
    (out / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
