"""The old pipeline's side of the drop-in HTTP API: its client does exactly this (urllib, JSON
in, a zip of meta.json and .npy matrices out, pydantic models with extra="forbid"), so these
models are written from the contract's list of keys, not from this server's code."""

import io
import json
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Embedding(Strict):
    model_name: str
    max_length: int
    pooling: str
    dim: int


class LanguageTool(Strict):
    language: str
    request_options: Dict[str, str]
    service_url: str
    jar_version: str


class FeatureSchema(Strict):
    tier1: List[str]
    tier2: List[str]
    tier3: List[str]
    combined: List[str]


class Meta(Strict):
    schema_version: int
    server_fingerprint: str
    git_sha: Optional[str]
    versions: Dict[str, str]
    embedding: Embedding
    language_tool: LanguageTool
    feature_schema: FeatureSchema


class ErrorBody(Strict):
    schema_version: int
    error: str
    detail: str
    correlation_id: str
    extra: dict


def essays(n):
    lines = (ROOT / "tests/fixtures/essays/ellipse50.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:n]]


def post(url, body, correlation_id=None):
    """POSTs JSON as the old client does; returns (status, headers, body bytes)."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_combined_zip_validates_and_loads(server_url):
    sample = essays(4)
    status, headers, body = post(
        f"{server_url}/v1/extract",
        {
            "texts": [e["text"] for e in sample],
            "prompts": [e["prompt"] for e in sample],
            "feature_set": "combined",
        },
    )
    assert status == 200, body[:500]
    assert headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert sorted(z.namelist()) == ["embeddings.npy", "handcrafted.npy", "meta.json"]
        meta = Meta.model_validate_json(z.read("meta.json"))
        emb = np.load(io.BytesIO(z.read("embeddings.npy")))
        hc = np.load(io.BytesIO(z.read("handcrafted.npy")))
    assert headers["X-Schema-Version"] == str(meta.schema_version) == "2"
    assert headers["X-Server-Fingerprint"] == meta.server_fingerprint
    assert emb.dtype == np.float32 and emb.flags["C_CONTIGUOUS"]
    assert emb.shape == (4, meta.embedding.dim)
    assert hc.dtype == np.float32 and hc.shape == (4, 25)
    fs = meta.feature_schema
    assert (len(fs.tier1), len(fs.tier2), len(fs.tier3)) == (11, 9, 5)
    assert fs.combined == [f"embedding_{i:03d}" for i in range(meta.embedding.dim)] + fs.tier1 + fs.tier2 + fs.tier3
    assert meta.language_tool.language == "en-US"
    assert np.isfinite(hc[:, fs.tier1.index("word_count")]).all()


def test_embed_answers_an_npy(server_url):
    status, headers, body = post(f"{server_url}/v1/embed", {"texts": ["One.", "Two words."], "batch_size": 8})
    assert status == 200
    assert headers["X-Embedding-DType"] == "float32"
    m = np.load(io.BytesIO(body))
    assert m.dtype == np.float32 and m.shape[0] == 2


@pytest.mark.parametrize(
    "body,status,error",
    [
        ({"texts": ["a"], "prompts": ["p"], "feature_set": "combined", "extra": 1}, 400, "invalid_request"),
        ({"texts": ["a", "b"], "prompts": ["p"], "feature_set": "combined"}, 400, "invalid_request"),
        ({"texts": ["a"], "prompts": ["p"], "feature_set": "tier9"}, 400, "invalid_request"),
    ],
)
def test_refusals_are_error_bodies(server_url, body, status, error):
    code, headers, raw = post(f"{server_url}/v1/extract", body, correlation_id="py-1")
    assert code == status
    err = ErrorBody.model_validate_json(raw)
    assert err.error == error and err.correlation_id == "py-1" and err.detail


def test_unknown_path_is_404(server_url):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server_url}/v1/nothing")
    assert e.value.code == 404
