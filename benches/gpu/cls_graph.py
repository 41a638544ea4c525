#!/usr/bin/env python3
"""Writes a CLS-only copy of an exported DeBERTa graph, for the GPU check (benches/gpu.sh).

The exports of models/export_deberta.py output `last_hidden_state` [batch, seq, dim]. On a GPU,
copying that back costs as much as a small batch's compute (16 x 512 x 768 floats = 25 MB) while
the service keeps only row 0 of every sequence. This adds a Gather (index 0 on the sequence
axis) and makes its result, `cls` [batch, dim], the graph's only output, so ONNX Runtime copies
back only the CLS rows. The weights and every other node are unchanged.

  python3 benches/gpu/cls_graph.py MODEL_DIR     # model.onnx -> model.cls.onnx,
                                                  # model.fp16.onnx -> model.fp16.cls.onnx
Needs the `onnx` package (models/requirements.txt pins it).
"""
from __future__ import annotations

import sys
from pathlib import Path


def cls_only(src: Path, dst: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    graph = model.graph
    hidden = next((o for o in graph.output if o.name == "last_hidden_state"), None)
    if hidden is None:
        raise SystemExit(f"{src}: no output `last_hidden_state` (export it with models/export_deberta.py)")
    index = helper.make_tensor("hemma_cls_index", TensorProto.INT64, dims=[], vals=[0])
    graph.initializer.append(index)
    graph.node.append(helper.make_node("Gather", ["last_hidden_state", "hemma_cls_index"], ["cls"],
                                       name="hemma_cls", axis=1))
    elem = hidden.type.tensor_type.elem_type
    dims = hidden.type.tensor_type.shape.dim
    batch = dims[0].dim_param or dims[0].dim_value if dims else "batch"
    width = dims[2].dim_value if len(dims) == 3 and dims[2].dim_value else None
    out = helper.make_tensor_value_info("cls", elem, [batch, width])
    del graph.output[:]
    graph.output.append(out)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[0])
    done = 0
    for name in ("model.onnx", "model.fp16.onnx"):
        src = folder / name
        if src.is_file():
            dst = folder / name.replace(".onnx", ".cls.onnx")
            cls_only(src, dst)
            print(f"cls_graph: {dst}", file=sys.stderr)
            done += 1
    if done == 0:
        raise SystemExit(f"{folder}: neither model.onnx nor model.fp16.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
