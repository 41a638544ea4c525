"""The `hemma` package against a real server (the tiny model, the real LanguageTool): shapes,
ids, NaN, the shared cache (a second call makes no extraction call, from /metrics), errors as
exceptions with the server's sentence, equality with the CLI's files, and the README's block."""

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import hemma

ROOT = Path(__file__).resolve().parents[3]


def essays(n):
    lines = (ROOT / "tests/fixtures/essays/ellipse50.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def extraction_calls(server_url):
    """Extract + ExtractStream requests the server has finished, from its /metrics."""
    text = urllib.request.urlopen(f"{server_url}/metrics").read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("hemma_requests_total{") and re.search(r'method="/hemma\.offload\.v1\.Offload/Extract(Stream)?"', line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_extract_shapes_ids_nan_and_the_shared_cache(server_url, tmp_path):
    client = hemma.Client(server_url)
    assert client.health() == "SERVING"
    info = client.info()
    sample = essays(6)
    texts = [e["text"] for e in sample] + ["   "]
    prompts = [e["prompt"] for e in sample] + ["A prompt"]
    ids = [e["id"] for e in sample] + ["blank"]
    x = client.extract(texts, prompts=prompts, ids=ids, cache=tmp_path / "cache", progress=False)
    dim = info["model"]["dim"]
    assert x.embeddings.shape == (7, dim) and x.embeddings.dtype == np.float32
    hc = x.handcrafted
    assert list(hc.index) == ids and list(hc.columns) == info["handcrafted_feature_names"]
    assert hc.shape == (7, 25)
    # A blank essay has undefined readability: NaN is kept.
    assert np.isnan(hc.loc["blank", "flesch_kincaid"])
    assert x.meta["fingerprint"] == info["fingerprint"] and x.meta["cache_hits"] == 0
    assert x.meta["schema_version"] == 2
    before = extraction_calls(server_url)
    again = client.extract(texts, prompts=prompts, ids=ids, cache=tmp_path / "cache", progress=False)
    assert extraction_calls(server_url) == before, "a cached corpus makes no extraction call"
    assert again.meta["cache_hits"] == 7 and again.meta["fetched"] == 0
    np.testing.assert_array_equal(again.embeddings, x.embeddings)
    np.testing.assert_array_equal(again.handcrafted.to_numpy(), hc.to_numpy())


def test_errors_are_exceptions_with_the_servers_sentence(server_url):
    client = hemma.Client(server_url)
    huge = "word " * 50_000  # 250,000 bytes: over the server's 200,000 bytes per text
    with pytest.raises(hemma.InvalidArgument) as e:
        client.extract([huge], prompts="p", cache=False, progress=False)
    assert "bytes per text" in str(e.value)
    with pytest.raises(hemma.InvalidArgument):
        client.extract(["a"], feature_set="combined", cache=False)
    with pytest.raises(hemma.ConnectError) as e:
        hemma.Client("http://127.0.0.1:9", timeout=5).info()
    assert "tunnel" in str(e.value)


def test_equal_to_the_cli_files(server_url, tmp_path):
    sample = essays(5)
    jsonl = tmp_path / "essays.jsonl"
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in sample), encoding="utf-8")
    hemma_bin = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "hemma"
    out = tmp_path / "out"
    subprocess.run(
        [str(hemma_bin), "--server", server_url, "extract", "--input", str(jsonl), "--out", str(out),
         "--cache", str(tmp_path / "cli-cache"), "--quiet"],
        check=True,
    )
    client = hemma.Client(server_url)
    x = client.extract([e["text"] for e in sample], prompts=[e["prompt"] for e in sample],
                       ids=[e["id"] for e in sample], cache=tmp_path / "py-cache", progress=False)
    assert (out / "ids.txt").read_text().splitlines() == x.ids
    np.testing.assert_allclose(np.load(out / "embeddings.npy"), x.embeddings, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(out / "handcrafted.npy"), x.handcrafted.to_numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["fingerprint"] == x.meta["fingerprint"]


def test_extract_frame_joins_embeddings_and_features(server_url, tmp_path):
    pd = pytest.importorskip("pandas")
    sample = essays(3)
    df = pd.DataFrame({"text_id": [e["id"] for e in sample], "full_text": [e["text"] for e in sample],
                       "prompt": [e["prompt"] for e in sample]})
    client = hemma.Client(server_url)
    frame = client.extract_frame(df, cache=tmp_path / "c", progress=False)
    assert list(frame.index) == list(df["text_id"]) and frame.index.name == "text_id"
    assert "embedding_000" in frame.columns and "word_count" in frame.columns


def test_the_readmes_python_block_runs(server_url, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### From Python\n.*?```python\n(.*?)```", readme, re.S)
    assert block, "README has a `### From Python` section with a python block"
    pytest.importorskip("pandas")
    sample = essays(4)
    import pandas as pd

    pd.DataFrame({"text_id": [e["id"] for e in sample], "full_text": [e["text"] for e in sample],
                  "prompt": [e["prompt"] for e in sample]}).to_csv(tmp_path / "essays.csv", index=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEMMA_SERVER", server_url)
    monkeypatch.setenv("HEMMA_CACHE", str(tmp_path / "cache"))
    scope = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)
    assert scope["features"].shape[0] == 4


def test_ctrl_c_stops_within_a_second_and_keeps_the_cached_chunks(server_url, tmp_path):
    import signal
    import sys
    import time
    import uuid

    # Texts this server has not seen (earlier tests warmed its caches with the plain essays): a
    # run long enough that Ctrl-C lands in the middle of it, however fast the server answers.
    nonce = uuid.uuid4().hex
    sample = essays(50)
    corpus = [{"id": f"{e['id']}-{k}", "text": f"{e['text']}\n\nCopy {k} of run {nonce}.", "prompt": e["prompt"]}
              for k in range(4) for e in sample]
    corpus_file = tmp_path / "corpus.json"
    corpus_file.write_text(json.dumps(corpus), encoding="utf-8")
    cache = tmp_path / "cache"
    script = f"""
import json, hemma
corpus = json.load(open({str(corpus_file)!r}, encoding="utf-8"))
try:
    hemma.Client({server_url!r}).extract([e["text"] for e in corpus], prompts=[e["prompt"] for e in corpus],
        ids=[e["id"] for e in corpus], cache={str(cache)!r}, chunk_size=1, concurrency=1, progress=False)
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)

    deadline = time.time() + 120
    while not any(p.is_file() and not p.name.startswith(".") for p in cache.rglob("*")):
        assert proc.poll() is None and time.time() < deadline, "no chunk was cached"
        time.sleep(0.05)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    took = time.time() - sent
    assert out.strip() == "interrupted", out
    assert took < 2.0, f"stopped {took:.2f} s after Ctrl-C"
    kept = [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert 0 < len(kept) < len(corpus)
    # One chunk at a time, in order: the kept chunks are the corpus's first ones, served from the cache.
    done = corpus[:len(kept)]
    again = hemma.Client(server_url).extract([e["text"] for e in done], prompts=[e["prompt"] for e in done],
                                             ids=[e["id"] for e in done], cache=cache, progress=False)
    assert again.meta["cache_hits"] == len(done)


def test_an_essay_over_the_analysers_limits_gets_nan_and_a_status_also_from_the_cache(server_url, tmp_path):
    sample = essays(2)
    hostile = "This essay has one very long word: " + "a" * 5000 + " and then it ends."
    texts = [sample[0]["text"], hostile, sample[1]["text"], hostile]
    ids = [sample[0]["id"], "hostile", sample[1]["id"], "hostile-again"]
    prompts = [sample[0]["prompt"], "A prompt", sample[1]["prompt"], "A prompt"]
    client = hemma.Client(server_url)
    with pytest.warns(hemma.LimitedRowsWarning, match="2 of 4 essays") as caught:
        x = client.extract(texts, prompts=prompts, ids=ids, cache=tmp_path / "cache", progress=False)
    assert caught[0].filename == __file__, "the warning points at the caller's line"
    assert x.status[0] is None and x.status[2] is None
    assert isinstance(x.status[1], hemma.RowStatus) and x.status[1].code == "word_too_long"
    assert x.status[1].message and x.status[3] == x.status[1], "a duplicate gets the same status"
    hc = x.handcrafted
    assert hc.loc["hostile"].isna().all() and hc.loc["hostile-again"].isna().all()
    assert not hc.loc[ids[0]].isna().all()
    assert np.isfinite(x.embeddings[1]).all(), "a limited essay keeps its embedding"
    assert x.meta["limited"] == 2
    before = extraction_calls(server_url)
    with pytest.warns(hemma.LimitedRowsWarning):
        again = client.extract(texts, prompts=prompts, ids=ids, cache=tmp_path / "cache", progress=False)
    assert extraction_calls(server_url) == before, "the second call comes from the cache"
    assert again.meta["cache_hits"] == 3 and again.status == x.status and again.meta["limited"] == 2
    pd = pytest.importorskip("pandas")
    assert list(x.limited.index) == ["hostile", "hostile-again"]
    assert (x.limited["code"] == "word_too_long").all()
    df = pd.DataFrame({"text_id": ids, "full_text": texts, "prompt": prompts})
    with pytest.warns(hemma.LimitedRowsWarning) as caught:
        frame = client.extract_frame(df, cache=tmp_path / "cache", progress=False, status=True)
    assert len(caught) == 1 and caught[0].filename == __file__
    assert frame["status"].isna().tolist() == [True, False, True, False]
    assert frame.loc["hostile", "status"] == "word_too_long"
    assert frame.loc["hostile", "word_count"] != frame.loc["hostile", "word_count"]  # NaN


def test_limited_lists_only_the_essays_with_a_status():
    status = [None, hemma.RowStatus("word_too_long", "a word is over 2,000 characters"), None]
    x = hemma.Extraction(ids=["a", "b", "c"], embeddings=None, handcrafted=None, embedding_names=None,
                         handcrafted_names=None, meta={}, status=status)
    try:
        import pandas  # noqa: F401
    except ImportError:
        assert x.limited == [{"id": "b", "code": "word_too_long", "message": "a word is over 2,000 characters"}]
    else:
        assert list(x.limited.index) == ["b"] and x.limited.loc["b", "code"] == "word_too_long"
    empty = hemma.Extraction(ids=["a"], embeddings=None, handcrafted=None, embedding_names=None,
                             handcrafted_names=None, meta={}, status=[None])
    assert len(empty.limited) == 0


def test_several_servers_share_the_chunks_and_give_the_same_rows(server_url, tmp_path):
    # One server under two addresses: two connections, one fingerprint (as two machines would be).
    other = server_url.replace("127.0.0.1", "localhost")
    sample = essays(12)
    texts, prompts = [e["text"] for e in sample], [e["prompt"] for e in sample]
    one = hemma.Client(server_url).extract(texts, prompts=prompts, cache=False, progress=False)
    two = hemma.Client([server_url, other]).extract(texts, prompts=prompts, cache=False, progress=False,
                                                    chunk_size=2)
    # Equal up to batching: the strings share batches differently when the chunks do.
    np.testing.assert_allclose(two.embeddings, one.embeddings, atol=1e-5)
    np.testing.assert_allclose(two.handcrafted.to_numpy(), one.handcrafted.to_numpy(), rtol=1e-4, atol=1e-9)
    served = {s["endpoint"]: s["chunks"] for s in two.meta["servers"]}
    assert set(served) == {server_url, other} and sum(served.values()) == 6, served
    assert hemma.Client(f"{server_url},{other}").server == f"{server_url},{other}"
