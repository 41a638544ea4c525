"""Call hemma-offload's Extract from Python with stubs generated from proto/.

    python -m pip install grpcio-tools numpy
    python -m grpc_tools.protoc -I proto/proto --python_out=examples/python \
        --grpc_python_out=examples/python hemma/offload/v1/offload.proto
    python examples/python/extract_grpc.py [127.0.0.1:9000]
"""
import sys

import grpc
import numpy as np

from hemma.offload.v1 import offload_pb2 as pb
from hemma.offload.v1 import offload_pb2_grpc as rpc


def matrix(m: pb.Matrix) -> np.ndarray:
    """A wire matrix as a [rows, cols] float32 array (little-endian, row-major; NaN kept)."""
    dtype = np.dtype("<f2") if m.dtype == pb.DTYPE_F16 else np.dtype("<f4")
    return np.frombuffer(m.data, dtype=dtype).reshape(m.rows, m.cols).astype(np.float32)


def main(server: str) -> None:
    channel = grpc.insecure_channel(server, options=[("grpc.max_receive_message_length", 64 << 20)])
    stub = rpc.OffloadStub(channel)
    print("fingerprint", stub.Info(pb.InfoRequest()).fingerprint)
    resp = stub.Extract(pb.ExtractRequest(
        texts=["Phones distract drivers. I think they should be banned.",
               "School should start later.\n\nStudents are tired in the morning."],
        prompts=["Phones and driving"],            # one prompt for all, or one per text
        feature_set=pb.FEATURE_SET_COMBINED,
    ), timeout=120)
    emb, hc = matrix(resp.embeddings), matrix(resp.handcrafted)
    print("embeddings", emb.shape, "handcrafted", hc.shape)
    for name, value in zip(resp.handcrafted_feature_names, hc[0]):
        print(f"  {name:34s} {value:.4f}")
    t = resp.timings
    print(f"parse {t.parse_seconds:.3f}s embed {t.embed_seconds:.3f}s "
          f"languagetool {t.languagetool_seconds:.3f}s total {t.total_seconds:.3f}s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000")
