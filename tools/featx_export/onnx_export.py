"""ir.Network -> ONNX graph, so ONNX Runtime can act as the independent reference.

The graph mirrors the TF semantics literally rather than cleverly:
input "input" NHWC float in [0, 1] -> Mul/Add input normalisation ->
Transpose to NCHW -> per layer Conv (explicit pads, TF SAME for the given
H x W, odd pixel at bottom/right) [+ conv bias] + raw BatchNormalization (not
folded here: ORT folds it itself, so the file's raw parameters are what is
tested) + Clip(0, 6) -> residual Add -> ReduceMean over H, W -> "features".
With a classifier, "logits" = Gemm(features, W^T, b). `output_layer` adds a
NHWC output "layer" holding a named layer's output (after its activation) or
a block's output (after the residual add).

Padding depends on the input size, so a graph is built for one H x W.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import ir

OPSET = 13


def same_pads(size: int, kernel: int, stride: int):
    """TF SAME for one axis: (before, after, output size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class _GraphBuilder:
    def __init__(self):
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []

    def const(self, name: str, value) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs, output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output


def _conv(g: _GraphBuilder, layer: ir.Conv, x: str, h: int, w: int):
    """Emit one conv layer; returns (output name, out H, out W)."""
    k = layer.kernel
    kh, kw = int(k.shape[0]), int(k.shape[1])
    top, bottom, oh = same_pads(h, kh, layer.stride)
    left, right, ow = same_pads(w, kw, layer.stride)
    if layer.kind == "full":
        weight, group = k.transpose(3, 2, 0, 1), 1           # HWIO -> OIHW
    else:
        weight, group = k.transpose(2, 0, 1)[:, None], int(k.shape[2])  # HWC -> C1HW
    name = layer.name
    inputs = [x, g.const(f"{name}/kernel", weight)]
    if layer.bias is not None:
        inputs.append(g.const(f"{name}/bias", layer.bias))
    y = g.node("Conv", inputs, f"{name}/conv", kernel_shape=[kh, kw],
               strides=[layer.stride, layer.stride], pads=[top, left, bottom, right], group=group)
    bn = layer.batch_norm
    if bn is not None:
        y = g.node("BatchNormalization",
                   [y, g.const(f"{name}/gamma", bn.gamma), g.const(f"{name}/beta", bn.beta),
                    g.const(f"{name}/mean", bn.moving_mean), g.const(f"{name}/variance", bn.moving_variance)],
                   f"{name}/bn", epsilon=float(bn.epsilon))
    if layer.activation == "relu6":
        y = g.node("Clip", [y, g.const(f"{name}/clip_min", 0.0), g.const(f"{name}/clip_max", 6.0)],
                   f"{name}/relu6")
    elif layer.activation == "relu":
        y = g.node("Relu", [y], f"{name}/relu")
    elif layer.activation != "none":
        raise ValueError(f"{name}: activation {layer.activation!r} has no ONNX mapping here")
    return y, oh, ow


def build_model(net: ir.Network, height: int, width: int, batch: Optional[int] = None,
                output_layer: Optional[str] = None) -> onnx.ModelProto:
    if height < 1 or width < 1:
        raise ValueError(f"input size must be positive, got {height}x{width}")
    net.validate()
    g = _GraphBuilder()
    n_dim = batch if batch is not None else "N"
    x = g.node("Mul", ["input", g.const("input_scale", net.input_scale)], "normalize/scale")
    x = g.node("Add", [x, g.const("input_offset", net.input_offset)], "normalize/offset")
    x = g.node("Transpose", [x], "to_nchw", perm=[0, 3, 1, 2])

    tapped = {}  # layer or block name -> (tensor, channels)

    x, h, w = _conv(g, net.stem, x, height, width)
    tapped[net.stem.name] = (x, net.stem.out_channels)
    for block in net.blocks:
        y, bh, bw = x, h, w
        for layer in (block.expand, block.depthwise, block.project):
            if layer is None:
                continue
            y, bh, bw = _conv(g, layer, y, bh, bw)
            tapped[layer.name] = (y, layer.out_channels)
        x = g.node("Add", [x, y], f"{block.name}/add") if block.residual else y
        h, w = bh, bw
        tapped[block.name] = (x, block.out_channels)
    x, h, w = _conv(g, net.head, x, h, w)
    tapped[net.head.name] = (x, net.head.out_channels)

    features = g.node("ReduceMean", [x], "features", axes=[2, 3], keepdims=0)
    outputs = [helper.make_tensor_value_info(features, TensorProto.FLOAT, [n_dim, net.feature_dim])]
    if net.classifier is not None:
        c = net.classifier
        inputs = [features, g.const("logits/weights", c.weights)]
        if c.bias is not None:
            inputs.append(g.const("logits/bias", c.bias))
        g.node("Gemm", inputs, "logits", transB=1)
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n_dim, c.num_classes]))
    if output_layer is not None:
        if output_layer not in tapped:
            raise ValueError(f"no layer or block named {output_layer!r} (try e.g. 'expanded_conv_3' "
                             f"or 'expanded_conv_3/expand')")
        tensor, channels = tapped[output_layer]
        g.node("Transpose", [tensor], "layer", perm=[0, 2, 3, 1])
        outputs.append(helper.make_tensor_value_info("layer", TensorProto.FLOAT, [n_dim, None, None, channels]))

    graph = helper.make_graph(
        g.nodes, f"featx_{net.architecture}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n_dim, height, width, 3])],
        outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="featx_export", producer_version=ir.EXPORTER_VERSION)
    model.ir_version = 8  # readable by every ORT release that knows opset 13+
    onnx.checker.check_model(model)
    return model


def to_onnx(net: ir.Network, height: int, width: int, path, batch: Optional[int] = None,
            output_layer: Optional[str] = None) -> None:
    """Write the float graph of `net` for H x W inputs to `path`."""
    onnx.save(build_model(net, height, width, batch, output_layer), str(path))
