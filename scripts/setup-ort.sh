#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library from the PyPI `onnxruntime` wheel (CPU build) into
# .cache/onnxruntime/<version>/ and prints the line that points the server and tests at it:
#
#   eval "$(scripts/setup-ort.sh)"        # sets ORT_DYLIB_PATH
#
# Needs python3 with pip (only to download the wheel) and unzip or python3's zipfile.
# ONNXRUNTIME_VERSION overrides the version (default 1.32.0; ort 2.0.0-rc.15 needs >= 1.22).
set -euo pipefail
ver=${ONNXRUNTIME_VERSION:-1.32.0}
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/onnxruntime/$ver"
lib=$(ls "$dest"/libonnxruntime.so.* 2>/dev/null | head -1 || true)
if [ -z "$lib" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "setup-ort: downloading onnxruntime==$ver from PyPI" >&2
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 "onnxruntime==$ver" -d "$tmp" >&2
  whl=$(ls "$tmp"/onnxruntime-*.whl)
  mkdir -p "$dest"
  python3 - "$whl" "$dest" <<'PY'
import sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime.so"):
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
PY
  lib=$(ls "$dest"/libonnxruntime.so.* | head -1)
  echo "setup-ort: $lib" >&2
fi
echo "export ORT_DYLIB_PATH=$lib"
