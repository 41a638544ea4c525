"""A real hemma-offload server for the Python tests (a pytest fixture both test folders use): the
binary `cargo test --workspace` built, the committed tiny model, and the real LanguageTool that
scripts/test.sh started (HEMMA_TEST_LANGUAGETOOL_URL)."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = Path(os.environ.get("HEMMA_OFFLOAD_BIN", target / "debug" / "hemma-offload"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `cargo build -p hemma-server` (scripts/test.sh does)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    urls = os.environ.get("HEMMA_TEST_LANGUAGETOOL_URL", "")
    if not urls:
        pytest.fail("HEMMA_TEST_LANGUAGETOOL_URL is not set: run scripts/test.sh, which starts LanguageTool")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "hemma-offload.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            str(_binary()), "serve",
            "--listen", f"127.0.0.1:{port}",
            "--model-dir", str(ROOT / "tests/fixtures/tiny-deberta"),
            "--engine", "candle",
            "--nlp-models-dir", str(ROOT / "models"),
            "--languagetool-url", urls.split(",")[0],
            "--languagetool-timeout-secs", "60",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if json.load(r).get("ready"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            err = log_path.read_text(errors="replace")[-2000:]
            pytest.fail(f"hemma-offload did not become ready: {err}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
