"""hemma: the hemma-offload feature service from Python.

    import hemma
    client = hemma.Client("http://127.0.0.1:19000")
    x = client.extract(texts, prompts=prompts, ids=ids)   # cached, resumable, with a progress bar
    x.embeddings        # numpy float32 [essays, dim]
    x.handcrafted       # pandas DataFrame indexed by id (numpy array when pandas is missing)
    x.meta              # fingerprint, schema, counts, cache hits, timings
    x.status            # per essay: None, or RowStatus(code, message) when the server limited it
    x.limited           # DataFrame of the limited essays only: id -> code, message

An essay whose text exceeds what the server's analyser takes (docs/features.md, "Limits"; for
example a word over 2,000 characters) still gets its row: its embedding as usual,
NaN for its handcrafted features, and a status in `x.status` (`code` such as "word_too_long" and
the server's sentence). `extract` then warns with a `hemma.LimitedRowsWarning`; the cache keeps
the status, so a cached re-run reports the same. `client.extract_frame(df, status=True)` adds a
`status` column (the code; missing for a complete row).

Extractions go through the same local cache as `hemma extract` (same folder, format and keys),
so the CLI and Python share rows; a second call for the same essays asks the server only for its
fingerprint. Calls release the GIL while they wait, and Ctrl-C stops a running extraction within
about a second, keeping the chunks already answered in the cache.
"""

import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _hemma
from ._hemma import (
    ConnectError,
    DeadlineExceeded,
    FailedPrecondition,
    FingerprintChanged,
    HemmaError,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)

__all__ = [
    "Client",
    "Extraction",
    "RowStatus",
    "LimitedRowsWarning",
    "HemmaError",
    "ConnectError",
    "InvalidArgument",
    "Unavailable",
    "ResourceExhausted",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FingerprintChanged",
    "default_cache_dir",
]

FEATURE_SETS = ("embeddings", "handcrafted", "combined")


def default_cache_dir() -> Optional[Path]:
    """The cache folder `hemma extract` uses: $HEMMA_CACHE, else $XDG_CACHE_HOME/hemma, else
    ~/.cache/hemma."""
    env = os.environ.get("HEMMA_CACHE")
    if env:
        return Path(env)
    root = _hemma.default_cache_root()
    return Path(root) if root else None


def _matrix(m) -> Optional[np.ndarray]:
    if m is None:
        return None
    data, rows, cols = m
    return np.frombuffer(data, dtype="<f4").reshape(rows, cols).copy()


class _Bar:
    """A progress bar: tqdm's where it is installed, else a plain line on stderr; silent when
    stderr is not a terminal or `show` is False."""

    def __init__(self, total: int, show: Optional[bool]):
        if show is None:
            show = sys.stderr.isatty()
        self._tqdm = None
        self._done = 0
        self._total = total
        self._show = show
        if show:
            try:
                from tqdm.auto import tqdm

                self._tqdm = tqdm(total=total, unit="essay", desc="hemma")
            except ImportError:
                pass

    def advance(self, n: int) -> None:
        self._done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self._show:
            print(f"\rhemma: {self._done}/{self._total} essays", end="", file=sys.stderr, flush=True)

    def note(self, line: str) -> None:
        if self._tqdm is not None:
            self._tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._show:
            print(file=sys.stderr)


class LimitedRowsWarning(UserWarning):
    """Some essays exceeded what the server's analyser takes: their handcrafted features are NaN
    (see `Extraction.status`)."""


@dataclass(frozen=True)
class RowStatus:
    """Why one essay's row is not complete: its handcrafted features are NaN because its text
    exceeded what the server's analyser takes (its embedding is computed as usual)."""

    code: str
    """A stable snake_case reason, e.g. "word_too_long" (docs/features.md lists them)."""
    message: str
    """The server's sentence: what was over which limit."""


@dataclass
class Extraction:
    """The rows of one extraction, in input order."""

    ids: List[str]
    """One id per essay (given, else "0", "1", ...)."""
    embeddings: Optional[np.ndarray]
    """float32 [essays, dim], for the embeddings and combined sets."""
    handcrafted: Any
    """pandas DataFrame [essays, 25] indexed by id (numpy float32 array when pandas is not
    installed), NaN where a feature is undefined; for the handcrafted and combined sets."""
    embedding_names: Optional[List[str]]
    """Names of the embedding columns (`embedding_000`, ...)."""
    handcrafted_names: Optional[List[str]]
    """Names of the handcrafted columns, in the contract's order."""
    meta: Dict[str, Any]
    """Fingerprint, schema version, feature set, counts (`limited`: essays with a status), cache
    hits, retries, timings, server."""
    status: List[Optional[RowStatus]] = field(default_factory=list)
    """One per essay, in input order: None for a complete row, a `RowStatus` (code, message) for
    an essay the server could not analyse whole (NaN handcrafted features)."""

    @property
    def limited(self) -> Any:
        """The essays with a status only: a pandas DataFrame indexed by id with columns `code`
        and `message` (empty when every row is complete); a list of dicts (id, code, message)
        when pandas is not installed."""
        rows = [(i, s.code, s.message) for i, s in zip(self.ids, self.status) if s is not None]
        try:
            import pandas as pd
        except ImportError:
            return [{"id": i, "code": c, "message": m} for i, c, m in rows]
        frame = pd.DataFrame(rows, columns=["id", "code", "message"])
        return frame.set_index("id")


def _caller_stacklevel() -> int:
    """The `warnings.warn` stacklevel of the first frame outside this module (the user's line)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        level, frame = level + 1, frame.f_back
    return level


def _warn_limited(x: Extraction) -> None:
    """One `LimitedRowsWarning` when some essays have a status, pointing at the caller's line."""
    limited = [(i, s) for i, s in zip(x.ids, x.status) if s is not None]
    if not limited:
        return
    first_id, first = limited[0]
    warnings.warn(
        f"{len(limited)} of {len(x.ids)} essays exceed what the server's analyser takes: their "
        f"handcrafted features are NaN (first: {first_id!r}, {first.code!r}: {first.message!r}); "
        "see Extraction.status",
        LimitedRowsWarning,
        stacklevel=_caller_stacklevel(),
    )


class Client:
    """A connection to a hemma-offload server (through the SSH tunnel, usually), or to several.

    `server` is a URL, several comma-separated, or a list of URLs (default `$HEMMA_SERVER`, else
    http://127.0.0.1:9000). With several, `extract` spreads its chunks over all of them (they must
    share one fingerprint; one that goes away mid-run leaves it, the others take its chunks);
    `info`, `health` and `embed` use the first."""

    def __init__(self, server: Union[None, str, Sequence[str]] = None, timeout: float = 600.0):
        server = server or os.environ.get("HEMMA_SERVER", "http://127.0.0.1:9000")
        if not isinstance(server, str):
            server = ",".join(str(s) for s in server)
        self.server = server
        self._inner = _hemma.Client(server, timeout)

    def info(self) -> Dict[str, Any]:
        """Fingerprint, model, engine, limits and feature names of the server."""
        return json.loads(self._inner.info_json())

    def health(self) -> str:
        """The gRPC health status: "SERVING" when ready."""
        return self._inner.health()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """[CLS] embeddings of `texts`, float32 [texts, dim] (no cache)."""
        return _matrix(self._inner.embed(list(texts)))

    def extract(
        self,
        texts: Sequence[str],
        prompts: Union[None, str, Sequence[str]] = None,
        feature_set: str = "combined",
        ids: Optional[Sequence[Any]] = None,
        cache: Union[bool, str, os.PathLike] = True,
        progress: Optional[bool] = None,
        chunk_size: int = 32,
        concurrency: int = 4,
        retries: int = 5,
        retry_wait: float = 1.0,
    ) -> Extraction:
        """Extracts `feature_set` ("embeddings", "handcrafted" or "combined") for `texts`.

        `prompts` is one per text or one string for all (needed by handcrafted and combined).
        `cache` is True (the folder `hemma extract` uses), False (none), or a folder. The progress
        bar shows on a terminal unless `progress=False`. Essays the server could not analyse whole
        have a status in `.status` and raise one `LimitedRowsWarning`."""
        if feature_set not in FEATURE_SETS:
            raise InvalidArgument(f"feature_set {feature_set!r} is unknown: choose one of {FEATURE_SETS}")
        texts = [str(t) for t in texts]
        ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(texts))]
        if isinstance(prompts, str):
            prompts = [prompts] * len(texts)
        elif prompts is not None:
            prompts = [str(p) for p in prompts]
        if feature_set != "embeddings" and prompts is None:
            raise InvalidArgument(f"the {feature_set} feature set needs prompts: one per text, or a single string for all")
        if feature_set == "embeddings":
            prompts = None
        if cache is True:
            cache_dir = default_cache_dir()
        elif cache is False or cache is None:
            cache_dir = None
        else:
            cache_dir = Path(cache)
        bar = _Bar(len(texts), progress)
        try:
            out = self._inner.extract(
                ids,
                texts,
                prompts,
                feature_set,
                str(cache_dir) if cache_dir is not None else None,
                chunk_size,
                concurrency,
                retries,
                retry_wait,
                bar.advance,
                bar.note,
            )
        finally:
            bar.close()
        info = json.loads(out["info"])
        meta = json.loads(out["report"])
        meta.update(
            {
                "feature_set": feature_set,
                "schema_version": info["schema_version"],
                "server": info,
                "cache_dir": str(cache_dir) if cache_dir is not None else None,
            }
        )
        ids = list(out["ids"])
        status: List[Optional[RowStatus]] = [None] * len(ids)
        for index, code, message in out["limited"]:
            status[index] = RowStatus(code, message)
        handcrafted = _matrix(out["handcrafted"])
        if handcrafted is not None:
            try:
                import pandas as pd

                handcrafted = pd.DataFrame(handcrafted, index=pd.Index(out["ids"], name="id"), columns=out["handcrafted_names"])
            except ImportError:
                pass
        x = Extraction(
            ids=ids,
            embeddings=_matrix(out["embeddings"]),
            handcrafted=handcrafted,
            embedding_names=out["embedding_names"],
            handcrafted_names=out["handcrafted_names"],
            meta=meta,
            status=status,
        )
        _warn_limited(x)
        return x

    def extract_frame(
        self,
        df,
        text: str = "full_text",
        prompt: str = "prompt",
        id: str = "text_id",
        feature_set: str = "combined",
        status: bool = False,
        **kwargs,
    ):
        """Extracts the essays of a pandas DataFrame: one row per essay, indexed by its `id`
        column, with the handcrafted columns and `embedding_000`... (as the set provides).
        `status=True` adds a last column `status`: the code (e.g. "word_too_long") for an essay
        the server could not analyse whole, missing (`isna()`) for a complete row."""
        import pandas as pd

        prompts = df[prompt].tolist() if feature_set != "embeddings" else None
        x = self.extract(df[text].tolist(), prompts=prompts, feature_set=feature_set, ids=df[id].tolist(), **kwargs)
        parts = []
        if x.embeddings is not None:
            parts.append(pd.DataFrame(x.embeddings, index=pd.Index(x.ids, name="id"), columns=x.embedding_names))
        if x.handcrafted is not None:
            hc = x.handcrafted
            if not isinstance(hc, pd.DataFrame):
                hc = pd.DataFrame(hc, index=pd.Index(x.ids, name="id"), columns=x.handcrafted_names)
            parts.append(hc)
        out = pd.concat(parts, axis=1)
        if status:
            out["status"] = [s.code if s is not None else None for s in x.status]
        out.index.name = id
        return out
