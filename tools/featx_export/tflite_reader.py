"""TFLite MobileNetV2 (quantised or float) -> ir.Network, without the tflite package.

What the converter left in the file, and how it maps:

- Weights are dequantised, w = scale * (q - zero_point), per tensor (slim
  uint8 QAT model) or per channel along quantized_dimension (TF2 int8 PTQ).
  Biases are int32 with scale = input_scale * weight_scale: b = scale * q.
  Batch norm is already folded into these by the converter, so layers get
  Conv.bias and no BatchNorm.
- Layouts: CONV_2D kernels are OHWI -> HWIO; DEPTHWISE_CONV_2D kernels are
  [1, kh, kw, C] -> HWC (depth multiplier 1 only).
- Activations come from fused_activation_function. A quantised file can also
  express ReLU6 only through its output range (fused NONE, output quantised
  exactly onto [0, 6]); that case is read as ReLU6 too. In both shared models
  every ReLU6 is fused explicitly (RELU6 with output range [0, 6]); the range
  rule never fires there.
- Input normalisation comes from the graph input's quantisation: a uint8
  input q = 255 x means internal = scale * (255 x - zero_point), so
  input_scale = 255 scale, input_offset = -scale * zero_point (an int8 input
  is q = 255 x - 128). A QUANTIZE from the uint8 input to int8 (TF2 model)
  keeps the scale and moves the zero point by 128, so the value is the same.
  A float input carries no range; the Hub convention x * 2 - 1 is assumed.
- The graph is walked by structure, not by tensor names (the TF2 file's names
  are merged and numbered one off from slim's); layers get slim names.
"""

from __future__ import annotations

import os
import struct
from typing import Dict, List, Optional

import numpy as np
from flatbuffers import number_types as N

from . import ir
from . import tflite_schema as S

_IGNORED_TAIL = {"RESHAPE", "SQUEEZE", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"}


class _Graph:
    """Tensors, constant data and producer/consumer links of subgraph 0."""

    def __init__(self, model: S.Model, what: str):
        self.what = what
        subgraphs = model.subgraphs()
        if not subgraphs:
            raise ValueError(f"{what}: TFLite model has no subgraph")
        self.sg = subgraphs[0]
        self.tensors = self.sg.tensors()
        self.buffers = model.buffers()
        codes = model.operator_codes()
        self.ops = []
        for op in self.sg.operators():
            if op.opcode_index() >= len(codes):
                raise ValueError(f"{what}: operator refers to opcode {op.opcode_index()}, "
                                 f"file has {len(codes)}")
            self.ops.append((codes[op.opcode_index()].name(), op))
        self.producer: Dict[int, int] = {}
        self.consumers: Dict[int, List[int]] = {}
        for k, (_, op) in enumerate(self.ops):
            for t in op.outputs():
                self.producer[t] = k
            for t in op.inputs():
                if t >= 0:
                    self.consumers.setdefault(t, []).append(k)

    def tensor(self, index: int) -> S.Tensor:
        if not 0 <= index < len(self.tensors):
            raise ValueError(f"{self.what}: tensor index {index} out of range")
        return self.tensors[index]

    def describe(self, index: int) -> str:
        t = self.tensor(index)
        return f"tensor {t.name()!r} {t.type_name()}{t.shape()}"

    def raw_constant(self, index: int) -> Optional[np.ndarray]:
        t = self.tensor(index)
        if t.buffer() >= len(self.buffers):
            raise ValueError(f"{self.what}: {self.describe(index)} refers to missing buffer")
        buf = self.buffers[t.buffer()]
        data = buf.data()
        if data is None or len(data) == 0:
            if buf.external():
                raise ValueError(f"{self.what}: {self.describe(index)} is stored outside the "
                                 f"flatbuffer (models over 2 GB are not supported)")
            return None
        dtype = S.NUMPY_DTYPES.get(t.type_name())
        if dtype is None:
            raise ValueError(f"{self.what}: {self.describe(index)}: unsupported constant type")
        arr = np.frombuffer(data.tobytes(), dtype=np.dtype(dtype).newbyteorder("<"))
        shape = t.shape()
        if arr.size != int(np.prod(shape)):
            raise ValueError(f"{self.what}: {self.describe(index)} holds {arr.size} values")
        return arr.reshape(shape)

    def constant(self, index: int) -> np.ndarray:
        """A constant tensor as float64, dequantised, following DEQUANTIZE (float16 weights)."""
        raw = self.raw_constant(index)
        if raw is None and index in self.producer:
            name, op = self.ops[self.producer[index]]
            if name == "DEQUANTIZE":
                return self.constant(op.inputs()[0])
        if raw is None:
            raise ValueError(f"{self.what}: expected constant weights, {self.describe(index)} "
                             f"has no data")
        if raw.dtype.kind == "f":
            return raw.astype(np.float64)
        return dequantize(raw, self.tensor(index).quantization(), self.what, self.describe(index))

    def quant_range(self, index: int):
        """(min, max) representable float of a per-tensor quantised activation, or None."""
        t = self.tensor(index)
        q = t.quantization()
        if q is None or q.scale() is None or len(q.scale()) != 1:
            return None
        lo, hi = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767)}.get(
            t.type_name(), (None, None))
        if lo is None:
            return None
        s, zp = float(q.scale()[0]), int(q.zero_point()[0])
        return s * (lo - zp), s * (hi - zp)

    def next_op(self, tensor: int, skip_add: bool = True):
        """The op that carries `tensor` forward (residual ADDs also read block inputs)."""
        found = [k for k in self.consumers.get(tensor, [])
                 if not (skip_add and self.ops[k][0] == "ADD")]
        if len(found) > 1:
            names = ", ".join(self.ops[k][0] for k in found)
            raise ValueError(f"{self.what}: {self.describe(tensor)} feeds several ops ({names}); "
                             f"not a MobileNetV2 chain")
        return found[0] if found else None


def dequantize(q: np.ndarray, params: Optional[S.QuantizationParameters], what: str,
               desc: str) -> np.ndarray:
    """scale * (q - zero_point), per tensor or per channel along quantized_dimension."""
    if params is None or params.scale() is None:
        raise ValueError(f"{what}: {desc} is integer but has no quantisation parameters")
    scale = params.scale().astype(np.float64)
    zp = params.zero_point()
    zp = np.zeros_like(scale) if zp is None else zp.astype(np.float64)
    values = q.astype(np.float64)
    if scale.size == 1:
        return (values - zp[0]) * scale[0]
    dim = params.quantized_dimension()
    if not 0 <= dim < q.ndim or q.shape[dim] != scale.size:
        raise ValueError(f"{what}: {desc}: {scale.size} scales along dimension {dim}")
    shape = [1] * q.ndim
    shape[dim] = scale.size
    return (values - zp.reshape(shape)) * scale.reshape(shape)


def _conv_options(graph: _Graph, k: int):
    """(stride, fused activation) after checking padding, dilation and depth multiplier."""
    name, op = graph.ops[k]
    opt = op.options()
    if name == "CONV_2D":
        padding, sw, sh = (S.options_scalar(opt, 0, N.Int8Flags, 0), S.options_scalar(opt, 1, N.Int32Flags, 1),
                           S.options_scalar(opt, 2, N.Int32Flags, 1))
        act = S.options_scalar(opt, 3, N.Int8Flags, 0)
        dil = (S.options_scalar(opt, 4, N.Int32Flags, 1), S.options_scalar(opt, 5, N.Int32Flags, 1))
        multiplier = 1
    else:
        padding, sw, sh = (S.options_scalar(opt, 0, N.Int8Flags, 0), S.options_scalar(opt, 1, N.Int32Flags, 1),
                           S.options_scalar(opt, 2, N.Int32Flags, 1))
        multiplier = S.options_scalar(opt, 3, N.Int32Flags, 1)
        act = S.options_scalar(opt, 4, N.Int8Flags, 0)
        dil = (S.options_scalar(opt, 5, N.Int32Flags, 1), S.options_scalar(opt, 6, N.Int32Flags, 1))
    where = f"{graph.what}: {name} producing {graph.describe(op.outputs()[0])}"
    if S.PADDINGS.get(padding) != "SAME":
        raise ValueError(f"{where}: padding {S.PADDINGS.get(padding, padding)} (only SAME is supported)")
    if sw != sh:
        raise ValueError(f"{where}: unequal strides {sh}x{sw}")
    if dil != (1, 1):
        raise ValueError(f"{where}: dilation {dil} (only 1 is supported)")
    if name == "DEPTHWISE_CONV_2D" and multiplier != 1:
        raise ValueError(f"{where}: depth multiplier {multiplier} (only 1 is supported)")
    return sw, S.ACTIVATIONS.get(act, f"activation#{act}")


def _conv(graph: _Graph, k: int, name: str, notes: List[str]) -> ir.Conv:
    op_name, op = graph.ops[k]
    inputs = op.inputs()
    stride, act = _conv_options(graph, k)
    out = op.outputs()[0]
    if act == "none":
        rng = graph.quant_range(out)
        # ReLU6 carried only by the output range: it clamps to [0, 6] all the same.
        if rng is not None and abs(rng[0]) < 1e-6 and abs(rng[1] - 6.0) < 0.05:
            act = "relu6"
            notes.append(f"{name}: ReLU6 inferred from output range [0, 6]")
    if act not in ("none", "relu6", "relu"):
        raise ValueError(f"{graph.what}: {op_name} {name}: unsupported fused activation {act}")
    w = graph.constant(inputs[1])
    if op_name == "CONV_2D":
        if w.ndim != 4:
            raise ValueError(f"{graph.what}: CONV_2D {name}: kernel {graph.describe(inputs[1])} "
                             f"is not OHWI")
        kernel, kind = w.transpose(1, 2, 3, 0), "full"  # OHWI -> HWIO
    else:
        if w.ndim != 4 or w.shape[0] != 1:
            raise ValueError(f"{graph.what}: DEPTHWISE_CONV_2D {name}: kernel "
                             f"{graph.describe(inputs[1])} is not [1, kh, kw, C]")
        kernel, kind = w[0], "depthwise"
    bias = None
    if len(inputs) > 2 and inputs[2] >= 0:
        bias = graph.constant(inputs[2]).astype(np.float32)
    return ir.Conv(name=name, kind=kind, kernel=np.ascontiguousarray(kernel, dtype=np.float32),
                   stride=stride, bias=bias, batch_norm=None, activation=act)


def _input_normalization(graph: _Graph, notes: List[str]):
    inputs = graph.sg.inputs()
    if len(inputs) != 1:
        raise ValueError(f"{graph.what}: expected one graph input, found {len(inputs)}")
    t = graph.tensor(inputs[0])
    shape = t.shape()
    if len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"{graph.what}: input {graph.describe(inputs[0])} is not [N, H, W, 3]")
    kind = t.type_name()
    q = t.quantization()
    if kind == "float32":
        notes.append("float input: assumed the TF Hub range x*2-1")
        return inputs[0], 2.0, -1.0, shape
    if kind not in ("uint8", "int8") or q is None or q.scale() is None or len(q.scale()) != 1:
        raise ValueError(f"{graph.what}: input {graph.describe(inputs[0])}: need uint8/int8 with "
                         f"one scale, or float32")
    s, zp = float(q.scale()[0]), int(q.zero_point()[0])
    shift = 0 if kind == "uint8" else 128  # q = 255 x (uint8) or 255 x - 128 (int8)
    scale, offset = 255.0 * s, -s * (zp + shift)
    notes.append(f"input {kind} scale={s:.9g} zero_point={zp}: internal = {scale:.9g}*x + {offset:.9g}")
    return inputs[0], scale, offset, shape


def _infer_alpha(stem_channels: int, block_channels: List[int]) -> float:
    """The width multiplier whose make_divisible rounding gives these channel counts."""
    for alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
        if ir.make_divisible(32 * alpha) != stem_channels:
            continue
        wanted = [ir.make_divisible(c * alpha) for t, c, n, s in ir.MOBILENET_V2_BLOCKS for _ in range(n)]
        if wanted == block_channels:
            return alpha
    return round(block_channels[-1] / 320.0, 4)


def read_tflite_bytes(data: bytes, what: str = "model.tflite") -> ir.Network:
    """Map a TFLite MobileNetV2 to ir.Network; ValueError names what does not fit."""
    model = S.open_model(data, what)
    try:
        return _read(model, what)
    except (IndexError, TypeError, struct.error) as e:  # offsets pointing nowhere
        raise ValueError(f"{what}: damaged TFLite flatbuffer ({type(e).__name__}: {e})") from None


def _read(model: S.Model, what: str) -> ir.Network:
    graph = _Graph(model, what)
    notes: List[str] = []
    x, input_scale, input_offset, in_shape = _input_normalization(graph, notes)

    # Skip layout-only ops between the input and the stem.
    k = graph.next_op(x)
    while k is not None and graph.ops[k][0] in ("QUANTIZE", "DEQUANTIZE"):
        x = graph.ops[k][1].outputs()[0]
        k = graph.next_op(x)
    if k is None or graph.ops[k][0] != "CONV_2D":
        found = graph.ops[k][0] if k is not None else "nothing"
        raise ValueError(f"{what}: expected the stem CONV_2D after the input, found {found}")
    stem = _conv(graph, k, "Conv", notes)
    if stem.kernel.shape[2] != 3:
        raise ValueError(f"{what}: stem kernel {stem.kernel.shape} does not take 3 channels")
    x = graph.ops[k][1].outputs()[0]
    channels = stem.out_channels

    blocks: List[ir.Block] = []
    head = None
    while head is None:
        k = graph.next_op(x)
        if k is None:
            raise ValueError(f"{what}: graph ends after {graph.describe(x)} without a head conv")
        op_name, op = graph.ops[k]
        if op_name == "CONV_2D":
            after = graph.next_op(op.outputs()[0])
            is_expand = after is not None and graph.ops[after][0] == "DEPTHWISE_CONV_2D"
        elif op_name == "DEPTHWISE_CONV_2D":
            is_expand, after = False, k
        else:
            raise ValueError(f"{what}: unexpected {op_name} on {graph.describe(x)}")
        if op_name == "CONV_2D" and not is_expand:
            head = _conv(graph, k, "Conv_1", notes)
            x = op.outputs()[0]
            break

        name = ir.block_name(len(blocks))
        expand = _conv(graph, k, f"{name}/expand", notes) if op_name == "CONV_2D" else None
        depthwise = _conv(graph, after, f"{name}/depthwise", notes)
        p = graph.next_op(graph.ops[after][1].outputs()[0])
        if p is None or graph.ops[p][0] != "CONV_2D":
            raise ValueError(f"{what}: {name}: depthwise conv is not followed by a project CONV_2D")
        project = _conv(graph, p, f"{name}/project", notes)
        y = graph.ops[p][1].outputs()[0]
        # y also feeds the next block's residual ADD; this block's own adds x and y.
        add = [c for c in graph.consumers.get(y, [])
               if graph.ops[c][0] == "ADD" and sorted(graph.ops[c][1].inputs()) == sorted([x, y])]
        if add:
            y = graph.ops[add[0]][1].outputs()[0]
        inner = expand.out_channels if expand is not None else channels
        block = ir.Block(name=name, expansion=int(round(inner / channels)), stride=depthwise.stride,
                         in_channels=channels, out_channels=project.out_channels, expand=expand,
                         depthwise=depthwise, project=project)
        if bool(add) != block.residual:
            raise ValueError(f"{what}: {name}: residual ADD {'present' if add else 'missing'} for "
                             f"stride {block.stride}, {channels} -> {block.out_channels} channels")
        for layer in (expand, depthwise, project):
            if layer is not None and layer.kernel.shape[0] != layer.kernel.shape[1]:
                raise ValueError(f"{what}: {layer.name}: non-square kernel {layer.kernel.shape}")
        blocks.append(block)
        x, channels = y, block.out_channels

    # Global pooling: MEAN over H, W or an AVERAGE_POOL_2D covering the whole map.
    k = graph.next_op(x)
    if k is None or graph.ops[k][0] not in ("MEAN", "AVERAGE_POOL_2D"):
        found = graph.ops[k][0] if k is not None else "nothing"
        raise ValueError(f"{what}: expected global pooling after the head conv, found {found}")
    pool_name, pool_op = graph.ops[k]
    map_shape = graph.tensor(x).shape()
    if pool_name == "MEAN":
        axes = graph.raw_constant(pool_op.inputs()[1])
        if axes is None or sorted(int(a) for a in axes.ravel()) != [1, 2]:
            raise ValueError(f"{what}: MEAN over axes {None if axes is None else axes.tolist()}, "
                             f"expected [1, 2]")
    else:
        opt = pool_op.options()
        fw, fh = S.options_scalar(opt, 3, N.Int32Flags, 0), S.options_scalar(opt, 4, N.Int32Flags, 0)
        if [fh, fw] != map_shape[1:3]:
            raise ValueError(f"{what}: AVERAGE_POOL_2D {fh}x{fw} on map {map_shape} is not global")
    x = pool_op.outputs()[0]

    # Optional logits: a 1x1 CONV_2D or FULLY_CONNECTED on the pooled vector.
    classifier = None
    k = graph.next_op(x)
    while k is not None and graph.ops[k][0] in ("RESHAPE", "SQUEEZE"):
        x = graph.ops[k][1].outputs()[0]
        k = graph.next_op(x)
    if k is not None and graph.ops[k][0] in ("CONV_2D", "FULLY_CONNECTED"):
        op_name, op = graph.ops[k]
        w = graph.constant(op.inputs()[1])
        if op_name == "CONV_2D":
            _, act = _conv_options(graph, k)
            if w.ndim != 4 or w.shape[1:3] != (1, 1):
                raise ValueError(f"{what}: logits CONV_2D kernel {w.shape} is not 1x1")
            w = w.reshape(w.shape[0], w.shape[3])
        else:
            act = S.ACTIVATIONS.get(S.options_scalar(op.options(), 0, N.Int8Flags, 0))
            if w.ndim != 2:
                raise ValueError(f"{what}: FULLY_CONNECTED weights {w.shape} are not 2-D")
        if act != "none":
            raise ValueError(f"{what}: logits layer has fused activation {act}")
        if w.shape[1] != head.out_channels:
            raise ValueError(f"{what}: logits weights {w.shape} do not take {head.out_channels} features")
        inputs = op.inputs()
        bias = graph.constant(inputs[2]).astype(np.float32) if len(inputs) > 2 and inputs[2] >= 0 else None
        classes = w.shape[0]
        # 1001-class files keep "background" at 0 like the labels file; 1000-class ones start at 1.
        classifier = ir.Classifier(weights=w.astype(np.float32), bias=bias,
                                   label_offset=1 if classes == 1000 else 0)
        x = op.outputs()[0]
        k = graph.next_op(x)
    while k is not None:
        if graph.ops[k][0] not in _IGNORED_TAIL:
            raise ValueError(f"{what}: unsupported {graph.ops[k][0]} after the logits")
        k = graph.next_op(graph.ops[k][1].outputs()[0])

    alpha = _infer_alpha(stem.out_channels, [b.out_channels for b in blocks])
    quant = sorted({graph.tensor(graph.ops[i][1].inputs()[1]).type_name()
                    for i in range(len(graph.ops)) if graph.ops[i][0] in ("CONV_2D", "DEPTHWISE_CONV_2D")})
    notes.insert(0, f"weights {'/'.join(quant)} dequantised; BN folded by the converter (conv bias)")
    net = ir.Network(width_multiplier=alpha, resolution=int(in_shape[1]),
                     input_scale=input_scale, input_offset=input_offset, stem=stem, blocks=blocks,
                     head=head, classifier=classifier, source=os.path.basename(what),
                     source_format="tflite", notes="; ".join(notes))
    net.validate()
    return net


def read_tflite(path) -> ir.Network:
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return read_tflite_bytes(data, path)
