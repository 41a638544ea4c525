#!/usr/bin/env bash
# Packs ONNX Runtime's CUDA build for a lent GPU machine that reaches no package registry and takes
# at most 64 MiB per call (working tree included), so the library travels in parts.
#
#   benches/gpu/ort-cuda-parts.sh [VERSION]        here (default 1.31.1, PyPI's newest onnxruntime-gpu,
#                                                  built for CUDA 13)
#
# Downloads the onnxruntime-gpu wheel from PyPI, keeps libonnxruntime.so* and the CUDA provider
# libraries (not TensorRT), xz-compresses them and splits them into .device/ort/part-NN of 40 MiB
# (git-ignored), with .device/ort/unpack.sh. Prints the sizes and the NEEDED CUDA libraries.
# The CUDA runtime, cuBLAS and cuDNN are NOT packed: the device image's torch (CUDA 13) ships them
# as nvidia-* packages, and unpack.sh points LD_LIBRARY_PATH at them.
#
# On the device, calls back to back (a machine stays warm about 30 s between calls, and files of
# earlier calls stay while it does):
#   calls 1..N-1: carry [".device/ort/part-NN"], command `true`
#   call N:       carry [the last part, ".device/bin"],
#                 command `bash .device/ort/unpack.sh && . /tmp/ort-cuda/env.sh && benches/gpu.sh ...`
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${1:-1.31.1}
out=.device/ort
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  "onnxruntime-gpu==$version" -d "$work"
wheel=$(ls "$work"/onnxruntime_gpu-*.whl)
(cd "$work" && python3 -m zipfile -e "$wheel" unpacked)
libs="$work/unpacked/onnxruntime/capi"
rm -f "$libs"/libonnxruntime_providers_tensorrt.so
echo "ort-cuda-parts: $(basename "$wheel") $(du -h "$wheel" | cut -f1); libraries kept:"
ls -la "$libs"/libonnxruntime*.so*
if command -v readelf >/dev/null; then
  echo "CUDA libraries the provider needs (from the device's torch install):"
  readelf -d "$libs"/libonnxruntime_providers_cuda.so | grep NEEDED | grep -E 'cu|nv' || true
fi
(cd "$libs" && tar cf - libonnxruntime*.so*) | xz -6 -T2 -c | split -b 40m -d - "$out/part-"
parts=$(ls "$out"/part-* | wc -l)
cat > "$out/unpack.sh" <<EOF
#!/usr/bin/env bash
# Joins the parts, unpacks them to /tmp/ort-cuda and writes /tmp/ort-cuda/env.sh (ORT_DYLIB_PATH,
# LD_LIBRARY_PATH with the nvidia-* libraries of this machine's Python).
set -euo pipefail
here=\$(cd "\$(dirname "\$0")" && pwd)
have=\$(ls "\$here"/part-* 2>/dev/null | wc -l)
[ "\$have" -eq $parts ] || { echo "unpack: \$have of $parts parts here; the machine went cold: carry them all again" >&2; exit 3; }
rm -rf /tmp/ort-cuda && mkdir -p /tmp/ort-cuda
cat "\$here"/part-* | python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.decompress(sys.stdin.buffer.read()))' | tar x -C /tmp/ort-cuda
lib=\$(ls /tmp/ort-cuda/libonnxruntime.so.* | head -1)
nvidia=\$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || echo /nonexistent)
dirs=\$(find "\$nvidia" -path '*nvidia*' -type d -name lib 2>/dev/null | tr '\n' ':' || true)
printf 'export ORT_DYLIB_PATH=%s\nexport LD_LIBRARY_PATH=/tmp/ort-cuda:%s\${LD_LIBRARY_PATH:-}\n' "\$lib" "\$dirs" > /tmp/ort-cuda/env.sh
echo "unpack: \$lib ready; . /tmp/ort-cuda/env.sh"
EOF
chmod +x "$out/unpack.sh"
echo "ort-cuda-parts: $parts parts in $out:"
ls -la "$out"
