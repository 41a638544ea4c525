"""The Python package against the CLI on the same essays: `hemma.Client.extract` vs `hemma extract`.

    eval "$(scripts/languagetool.sh start 18081)"
    cargo build --release -p hemma-server -p hemma-cli
    .cache/python-tests/bin/python benches/python_vs_cli.py [--essays 200] [--rounds 3]

Starts one release `hemma-offload` on the tiny fixture model with the real LanguageTool and its
result cache off (so every run does the whole work), then per round extracts the first N ELLIPSE
essays (`../shared/data/essays/ellipse_sample.jsonl`, not shipped; or --input) the combined way
with the CLI and with the package, each into a fresh cache, alternating which goes first. Prints
each round's seconds and the median Python/CLI ratio: both drive the same Rust runner, so the
ratio is the package's own cost (expected <= 1.05).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--essays", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--input", default=str(ROOT.parent / "shared/data/essays/ellipse_sample.jsonl"))
    args = ap.parse_args()
    import hemma

    lt = os.environ.get("HEMMA_TEST_LANGUAGETOOL_URL")
    if not lt:
        sys.exit('start LanguageTool first: eval "$(scripts/languagetool.sh start 18081)"')
    essays = [json.loads(line) for line in Path(args.input).read_text(encoding="utf-8").splitlines()[: args.essays]]
    work = Path(tempfile.mkdtemp(prefix="hemma-py-vs-cli-"))
    jsonl = work / "essays.jsonl"
    jsonl.write_text("".join(json.dumps({"id": e["id"], "text": e["text"], "prompt": e["prompt"]}) + "\n" for e in essays))
    bin_dir = ROOT / "target" / "release"
    port = free_port()
    server = subprocess.Popen(
        [str(bin_dir / "hemma-offload"), "serve", "--listen", f"127.0.0.1:{port}",
         "--model-dir", str(ROOT / "tests/fixtures/tiny-deberta"), "--nlp-models-dir", str(ROOT / "models"),
         "--languagetool-url", lt.split(",")[0], "--languagetool-cache-bytes", "0",
         "--languagetool-timeout-secs", "120"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz") as r:
                    if json.load(r).get("ready"):
                        break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("the server did not become ready")
            time.sleep(0.3)
        client = hemma.Client(url)

        def cli(k):
            t = time.perf_counter()
            subprocess.run([str(bin_dir / "hemma"), "--server", url, "extract", "--input", str(jsonl),
                            "--out", str(work / f"cli-{k}"), "--cache", str(work / f"cli-cache-{k}"), "--quiet"],
                           check=True, capture_output=True)
            return time.perf_counter() - t

        def py(k):
            t = time.perf_counter()
            client.extract([e["text"] for e in essays], prompts=[e["prompt"] for e in essays],
                           ids=[e["id"] for e in essays], cache=work / f"py-cache-{k}", progress=False)
            return time.perf_counter() - t

        # One warm-up of each (JVM, page cache), not counted.
        cli("warm"), py("warm")
        ratios = []
        print(f"{len(essays)} essays, combined, tiny model, LanguageTool result cache off")
        print("round | hemma extract s | hemma.Client.extract s | Python/CLI")
        for k in range(args.rounds):
            if k % 2 == 0:
                c, p = cli(k), py(k)
            else:
                p, c = py(k), cli(k)
            ratios.append(p / c)
            print(f"{k + 1} | {c:.2f} | {p:.2f} | {p / c:.3f}")
        print(f"median Python/CLI ratio: {statistics.median(ratios):.3f}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
