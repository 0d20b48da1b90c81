"""TFLite MobileNetV2 (quantised or float) -> ir.Network, without the tflite package.

Two kinds of file are read: the slim / TF Hub classification files (the two
in ../shared) and what tf.lite.TFLiteConverter.from_keras_model writes for a
Keras MobileNetV2 with the user's Dense layers on top. What the converter
left in the file, and how it maps (docs/tflite.md has the details):

- Weights are dequantised, w = scale * (q - zero_point), per tensor (slim
  uint8 QAT model) or per channel along quantized_dimension (TF2 int8 PTQ,
  dynamic-range int8); float16 constants are read through their DEQUANTIZE
  ops. Biases are int32 with scale = input_scale * weight_scale: b = scale * q.
  Batch norm is already folded into these by the converter, so layers get
  Conv.bias and no BatchNorm (the runtime's fold is then the identity).
- Layouts: CONV_2D kernels are OHWI -> HWIO; DEPTHWISE_CONV_2D kernels are
  [1, kh, kw, C] -> HWC (depth multiplier 1 only); FULLY_CONNECTED weights
  are [out, in] like ir.Dense.
- Padding: featx runs TF SAME. A SAME conv is read as is; a PAD op followed
  by a VALID conv (Keras's ZeroPadding2D(correct_pad) + VALID for the
  stride-2 depthwise convs, and the stem in keras-applications 1.0) is
  accepted when the pair pads exactly what SAME pads at this file's own
  input size, and refused otherwise with the op index and the pads.
- Activations come from fused_activation_function, or from a RELU6 / RELU op
  right after a conv with none. A quantised file can also express ReLU6 only
  through its output range (fused NONE, output quantised exactly onto
  [0, 6]); that case is read as ReLU6 too. In both shared models every ReLU6
  is fused explicitly; the range rule never fires there.
- Input normalisation: a uint8 input q = 255 x means internal =
  scale * (255 x - zero_point), so input_scale = 255 scale, input_offset =
  -scale * zero_point (an int8 input is q = 255 x - 128). A QUANTIZE from the
  uint8 input to int8 (TF2 model) keeps the scale and moves the zero point
  by 128, so the value is the same. Scalar MUL / DIV / ADD / SUB ops right
  after the input (a Keras Rescaling layer) are the model's own
  preprocessing and are folded in; a float input then takes pixel values in
  [0, 255], unless the ops map [0, 1] onto [-1, 1]. A float input without
  them carries no range: Keras MobileNetV2's [-1, 1] (internal = 2 x - 1)
  is assumed, and net.report says so.
- Head: MEAN over [1, 2] or a global AVERAGE_POOL_2D, then either a 1x1
  CONV_2D (slim logits -> ir.Classifier) or FULLY_CONNECTED ops (-> the
  user's ir.Dense layers, a SOFTMAX / RELU / RELU6 op after one becoming its
  activation; one linear or softmax layer of 1000 or 1001 outputs is the
  ImageNet top and becomes the classifier, so a labels file lines up). RESHAPE, SQUEEZE, QUANTIZE and DEQUANTIZE carry no numbers
  for a float runtime and are skipped, and reported. Any other op is refused.
- The graph is walked by structure, not by tensor names (the TF2 file's names
  are merged and numbered one off from slim's); conv layers get slim names.
  Dense layers keep the Keras layer name found in their tensor names
  ("sequential/dense/MatMul;sequential/dense/BiasAdd" -> "dense"), else the
  signature's output name (last layer), else Keras's dense, dense_1, ...
"""

from __future__ import annotations

import os
import re
import struct
from typing import Dict, List, Optional

import numpy as np
from flatbuffers import number_types as N

from . import ir
from . import tflite_schema as S

_IGNORED_TAIL = {"RESHAPE", "SQUEEZE", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"}
_PASS = ("QUANTIZE", "DEQUANTIZE")  # on activations: no arithmetic for a float runtime
_HEAD_PASS = ("RESHAPE", "SQUEEZE", "QUANTIZE", "DEQUANTIZE")
_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
_DENSE_ACTIVATION = {"none": "linear", "relu": "relu", "relu6": "relu6"}
_SKIP_REASON = {"QUANTIZE": "featx computes in float", "DEQUANTIZE": "featx computes in float",
                "RESHAPE": "shape only", "SQUEEZE": "shape only",
                "SOFTMAX": "after the logits; featx classify applies softmax itself"}


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



def same_pads(size: int, kernel: int, stride: int):
    """TF SAME for one axis: (before, after); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv_options(graph: _Graph, k: int):
    """(stride, fused activation, padding "SAME"/"VALID") after checking dilation and depth multiplier."""
    name, op = graph.ops[k]
    opt = op.options()
    padding, sw, sh = (S.options_scalar(opt, 0, N.Int8Flags, 0), S.options_scalar(opt, 1, N.Int32Flags, 1),
                       S.options_scalar(opt, 2, N.Int32Flags, 1))
    if name == "CONV_2D":
        act = S.options_scalar(opt, 3, N.Int8Flags, 0)
        dil = (S.options_scalar(opt, 4, N.Int32Flags, 1), S.options_scalar(opt, 5, N.Int32Flags, 1))
        multiplier = 1
    else:
        multiplier = S.options_scalar(opt, 3, N.Int32Flags, 1)
        act = S.options_scalar(opt, 4, N.Int8Flags, 0)
        dil = (S.options_scalar(opt, 5, N.Int32Flags, 1), S.options_scalar(opt, 6, N.Int32Flags, 1))
    where = f"{graph.what}: op {k} {name} producing {graph.describe(op.outputs()[0])}"
    if padding not in S.PADDINGS:
        raise ValueError(f"{where}: unknown padding {padding}")
    if sw != sh:
        raise ValueError(f"{where}: unequal strides {sh}x{sw}")
    if dil != (1, 1):
        raise ValueError(f"{where}: dilation {dil} (only 1 is supported)")
    if name == "DEPTHWISE_CONV_2D" and multiplier not in (0, 1):  # 0: newer converters leave it unset
        raise ValueError(f"{where}: depth multiplier {multiplier} (only 1 is supported)")
    return sw, S.ACTIVATIONS.get(act, f"activation#{act}"), S.PADDINGS[padding]


def _conv(graph: _Graph, k: int, name: str, notes: List[str]):
    """(ir.Conv, padding) for the CONV_2D / DEPTHWISE_CONV_2D op k."""
    op_name, op = graph.ops[k]
    inputs = op.inputs()
    stride, act, padding = _conv_options(graph, k)
    out = op.outputs()[0]
    if act == "none":
        rng = graph.quant_range(out)
        # ReLU6 carried only by the output range: it clamps to [0, 6] all the same.
        if rng is not None and abs(rng[0]) < 1e-6 and abs(rng[1] - 6.0) < 0.05:
            act = "relu6"
            notes.append(f"{name}: ReLU6 inferred from output range [0, 6]")
    if act not in ("none", "relu6", "relu"):
        raise ValueError(f"{graph.what}: op {k} {op_name} {name}: unsupported fused activation {act}")
    if len(inputs) < 2:
        raise ValueError(f"{graph.what}: op {k} {op_name} {name}: no weights input")
    w = graph.constant(inputs[1])
    if op_name == "CONV_2D":
        if w.ndim != 4:
            raise ValueError(f"{graph.what}: op {k} CONV_2D {name}: kernel {graph.describe(inputs[1])} "
                             f"is not OHWI")
        kernel, kind = w.transpose(1, 2, 3, 0), "full"  # OHWI -> HWIO
    else:
        if w.ndim != 4 or w.shape[0] != 1:
            raise ValueError(f"{graph.what}: op {k} DEPTHWISE_CONV_2D {name}: kernel "
                             f"{graph.describe(inputs[1])} is not [1, kh, kw, C]")
        kernel, kind = w[0], "depthwise"
    bias = None
    if len(inputs) > 2 and inputs[2] >= 0:
        bias = graph.constant(inputs[2]).astype(np.float32)
        if bias.shape != (kernel.shape[-1],):
            raise ValueError(f"{graph.what}: op {k} {op_name} {name}: bias {graph.describe(inputs[2])} "
                             f"does not match {kernel.shape[-1]} output channels")
    conv = ir.Conv(name=name, kind=kind, kernel=np.ascontiguousarray(kernel, dtype=np.float32),
                   stride=stride, bias=bias, batch_norm=None, activation=act)
    return conv, padding


def _infer_alpha(stem_channels: int, block_channels: List[int]) -> float:
    """The width multiplier whose make_divisible rounding gives these channel counts."""
    for alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
        if ir.make_divisible(32 * alpha) != stem_channels:
            continue
        wanted = [ir.make_divisible(c * alpha) for t, c, n, s in ir.MOBILENET_V2_BLOCKS for _ in range(n)]
        if wanted == block_channels:
            return alpha
    return round(block_channels[-1] / 320.0, 4)


_OP_PART = re.compile(r"^(MatMul|BiasAdd|Relu6?|Softmax|ReadVariableOp|Tensordot|Add|add|Identity|Reshape|"
                      r"Squeeze|transpose|Transpose|Cast|Const|kernel|bias)(_\d+)?(:\d+)?$")
_LAYER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def keras_layer_name(tensor_names) -> Optional[str]:
    """The Keras layer in converter tensor names: "sequential/dense/MatMul;..." -> "dense"."""
    for full in tensor_names:
        for part in (full or "").split(";"):
            comps = [c for c in part.split("/") if c]
            stripped = False
            while comps and _OP_PART.match(comps[-1]):
                comps.pop()
                stripped = True
            if (stripped and comps and _LAYER_NAME.match(comps[-1])
                    and not comps[-1].startswith(("StatefulPartitionedCall", "serving_default"))):
                return comps[-1]
    return None


class _Walk:
    """One pass over the op chain: the ops taken, the input size so far, and what to report."""

    def __init__(self, model: S.Model, graph: _Graph, what: str):
        self.model = model
        self.g = graph
        self.what = what
        self.visited = set()
        self.skipped: Dict[str, List[int]] = {}
        self.notes: List[str] = []
        self.report: List[str] = []
        self.pairs: List[int] = []  # PAD ops folded into the VALID conv after them
        self.separate: List[int] = []  # activation ops folded into the op before them
        self.h = self.w = 0

    def name(self, k: int) -> str:
        return self.g.ops[k][0]

    def op(self, k: int) -> S.Operator:
        return self.g.ops[k][1]

    def out(self, k: int) -> int:
        outs = self.op(k).outputs()
        if len(outs) != 1:
            raise ValueError(f"{self.what}: op {k} {self.name(k)} has {len(outs)} outputs, expected 1")
        return outs[0]

    def found(self, k: Optional[int]) -> str:
        return "nothing (end of graph)" if k is None else f"op {k} {self.name(k)}"

    def skip(self, k: int) -> None:
        if k not in self.visited:
            self.visited.add(k)
            self.skipped.setdefault(self.name(k), []).append(k)

    def next(self, t: int, passthrough=_PASS, mark: bool = True, skip_add: bool = True):
        """(k, t): the op carrying tensor t forward past pass-through ops, and the tensor it reads.

        ADDs reading t are residual adds (found separately) unless skip_add is False.
        """
        while True:
            k = self.g.next_op(t, skip_add=skip_add)
            if k is None or self.name(k) not in passthrough:
                return k, t
            if mark:
                self.skip(k)
            t = self.out(k)

    # -- input -------------------------------------------------------------------------------

    def input(self):
        g, what = self.g, self.what
        inputs = g.sg.inputs()
        if len(inputs) != 1:
            raise ValueError(f"{what}: expected one graph input, found {len(inputs)}")
        t = g.tensor(inputs[0])
        shape = t.shape()
        if len(shape) != 4 or shape[3] != 3 or min(shape[1:3]) < 1:
            raise ValueError(f"{what}: input {g.describe(inputs[0])} is not [N, H, W, 3]")
        signature = t.shape_signature()
        if signature is not None and len(signature) == 4 and min(signature[1:3]) < 1:
            raise ValueError(f"{what}: input {g.describe(inputs[0])} has a dynamic height/width "
                             f"(shape_signature {signature}); convert with a fixed input shape")
        self.h, self.w = shape[1], shape[2]
        kind = t.type_name()
        if kind == "float32":
            a, b = None, None
        else:
            q = t.quantization()
            if kind not in ("uint8", "int8") or q is None or q.scale() is None or len(q.scale()) != 1:
                raise ValueError(f"{what}: input {g.describe(inputs[0])}: need uint8/int8 with "
                                 f"one scale, or float32")
            s, zp = float(q.scale()[0]), int(q.zero_point()[0])
            shift = 0 if kind == "uint8" else 128  # q = 255 x (uint8) or 255 x - 128 (int8)
            a, b = 255.0 * s, -s * (zp + shift)
            self.notes.append(f"input {kind} scale={s:.9g} zero_point={zp}: internal = {a:.9g}*x + {b:.9g}")

        # The model's own preprocessing: scalar MUL / DIV / ADD / SUB right after the input.
        k, x = self.next(inputs[0], skip_add=False)
        mul, add, ops = 1.0, 0.0, []
        while k is not None and self.name(k) in ("MUL", "DIV", "ADD", "SUB"):
            name, op = self.name(k), self.op(k)
            ins = op.inputs()
            if len(ins) != 2 or x not in ins:
                raise ValueError(f"{what}: op {k} {name} after the input does not read it")
            other = ins[1] if ins[0] == x else ins[0]
            if ins[0] != x and name in ("SUB", "DIV"):
                raise ValueError(f"{what}: op {k} {name}: a constant {name.lower()} by the input is not "
                                 f"an input normalisation featx can express (scale * x + offset)")
            c = g.constant(other)
            values = np.unique(c.ravel())
            if values.size != 1:
                raise ValueError(f"{what}: op {k} {name} by {np.round(c.ravel()[:6], 6).tolist()}: "
                                 f"per-channel input normalisation is not supported (featx has one "
                                 f"scale and one offset)")
            act = S.ACTIVATIONS.get(S.options_scalar(op.options(), 0, N.Int8Flags, 0), "?")
            if act != "none":
                raise ValueError(f"{what}: op {k} {name} on the input has fused activation {act}")
            v = float(values[0])
            if name == "DIV" and v == 0:
                raise ValueError(f"{what}: op {k} DIV of the input by 0")
            mul, add = ir.apply_scalar_op(mul, add, name, v)
            ops.append(f"{k} {name} {v:.9g}")
            self.visited.add(k)
            k, x = self.next(self.out(k), skip_add=False)

        if a is not None:
            scale, offset = mul * a, mul * b + add
            if ops:
                self.report.append(f"input: {kind} (scale/zero point) then ops {', '.join(ops)}: "
                                   f"internal = {scale:.9g}*x + {offset:.9g}")
            else:
                self.report.append(f"input: {kind} quantised, internal = {scale:.9g}*x + {offset:.9g} "
                                   f"for x in [0, 1]")
        elif not ops:
            scale, offset = 2.0, -1.0
            self.notes.append("float input: assumed the Keras MobileNetV2 range x*2-1")
            self.report.append("input: float32 with no normalisation ops in the graph: assumed the Keras "
                               "MobileNetV2 range [-1, 1], internal = 2*x - 1 for x in [0, 1] "
                               "(pixels/127.5 - 1); see docs/tflite.md")
        else:
            unit = abs(mul + add - 1.0) < 1e-3 and abs(add + 1.0) < 1e-3  # maps [0, 1] onto [-1, 1]
            pixel = 1.0 if unit else 255.0
            scale, offset = mul * pixel, add
            self.notes.append(f"input normalisation from ops {', '.join(ops)}")
            self.report.append(f"input: float32, normalised in the graph by ops {', '.join(ops)}; taken "
                               f"as {'values in [0, 1]' if unit else 'pixel values in [0, 255]'}: "
                               f"internal = {scale:.9g}*x + {offset:.9g} for x in [0, 1]")
        return k, x, scale, offset

    # -- convs -------------------------------------------------------------------------------

    def pads(self, k: int):
        """The [[0, 0], [top, bottom], [left, right], [0, 0]] of PAD op k, checked."""
        op = self.op(k)
        ins = op.inputs()
        p = self.g.raw_constant(ins[1]) if len(ins) == 2 else None
        if p is None or p.shape != (4, 2):
            raise ValueError(f"{self.what}: op {k} PAD: paddings are not a constant [4, 2] tensor")
        p = [[int(v) for v in row] for row in p]
        if p[0] != [0, 0] or p[3] != [0, 0] or min(min(r) for r in p) < 0:
            raise ValueError(f"{self.what}: op {k} PAD {p}: pads the batch or channels, or is negative")
        return p

    def after_conv(self, k: int) -> Optional[int]:
        """The op after conv k and its separate activation, if any (nothing marked)."""
        k2, _ = self.next(self.out(k), mark=False)
        if k2 is not None and self.name(k2) in ("RELU6", "RELU"):
            k2, _ = self.next(self.out(k2), mark=False)
        return k2

    def conv(self, k: int, name: str):
        """[PAD] + conv + [RELU6 / RELU] starting at op k -> (ir.Conv, output tensor)."""
        what = self.what
        pad_k, pads = None, None
        if self.name(k) == "PAD":
            pad_k, pads = k, self.pads(k)
            self.visited.add(k)
            k, _ = self.next(self.out(k))
            if k is None or self.name(k) not in _CONVS:
                raise ValueError(f"{what}: op {pad_k} PAD is followed by {self.found(k)}, not a conv")
        conv, padding = _conv(self.g, k, name, self.notes)
        self.visited.add(k)
        kh, kw, s = int(conv.kernel.shape[0]), int(conv.kernel.shape[1]), conv.stride
        want = [list(same_pads(self.h, kh, s)), list(same_pads(self.w, kw, s))]
        base = want if padding == "SAME" else [[0, 0], [0, 0]]
        extra = pads[1:3] if pads else [[0, 0], [0, 0]]
        have = [[e + b for e, b in zip(er, br)] for er, br in zip(extra, base)]
        if have != want:
            where = f"op {pad_k} PAD {pads} + " if pad_k is not None else ""
            raise ValueError(f"{what}: {where}op {k} {self.name(k)} {padding} ({kh}x{kw}, stride {s}) "
                             f"on a {self.h}x{self.w} input pads {have}, TF SAME pads {want} there: "
                             f"featx runs SAME padding only")
        if pad_k is not None:
            self.pairs.append(pad_k)
        self.h, self.w = -(-self.h // s), -(-self.w // s)
        t = self.out(k)
        shape = self.g.tensor(t).shape()
        if len(shape) == 4 and min(shape[1:3]) > 0 and shape[1:3] != [self.h, self.w]:
            raise ValueError(f"{what}: op {k} {self.name(k)} {name}: output {self.g.describe(t)}, "
                             f"SAME padding gives {self.h}x{self.w}")
        k2, t2 = self.next(t, mark=False)
        if k2 is not None and self.name(k2) in ("RELU6", "RELU") and conv.activation == "none":
            self.next(t)  # mark the pass-through ops before it
            conv.activation = self.name(k2).lower()
            self.visited.add(k2)
            self.separate.append(k2)
            t = self.out(k2)
        return conv, t

    # -- head --------------------------------------------------------------------------------

    def dense_head(self, k: Optional[int], x: int, width: int, feature_layer: str, used: set):
        """FULLY_CONNECTED ops (+ activation ops) from op k -> [ir.Dense], named apart from `used`."""
        what, g = self.what, self.g
        layers, tensor_names, ops_of = [], [], []
        activated = False  # the last layer already took a separate activation op
        while k is not None:
            name, op = self.name(k), self.op(k)
            if name in _HEAD_PASS:
                self.skip(k)
            elif name == "FULLY_CONNECTED":
                ins = op.inputs()
                if len(ins) < 2:
                    raise ValueError(f"{what}: op {k} FULLY_CONNECTED has no weights input")
                opt = op.options()
                code = S.options_scalar(opt, 0, N.Int8Flags, 0)
                act = _DENSE_ACTIVATION.get(S.ACTIVATIONS.get(code, ""))
                if act is None:
                    raise ValueError(f"{what}: op {k} FULLY_CONNECTED: unknown activation "
                                     f"{S.ACTIVATIONS.get(code, f'#{code}')} (featx runs "
                                     f"{', '.join(ir.DENSE_ACTIVATIONS)})")
                if S.options_scalar(opt, 1, N.Int8Flags, 0) != 0:
                    raise ValueError(f"{what}: op {k} FULLY_CONNECTED: shuffled weights format is not "
                                     f"supported")
                w = g.constant(ins[1])
                if w.ndim != 2:
                    raise ValueError(f"{what}: op {k} FULLY_CONNECTED: weights {g.describe(ins[1])} are "
                                     f"not [outputs, inputs]")
                if w.shape[1] != width:
                    before = (f"the {width} features of {feature_layer}" if not layers
                              else f"the {width} outputs of the layer before")
                    raise ValueError(f"{what}: op {k} FULLY_CONNECTED: weights {list(w.shape)} take "
                                     f"{w.shape[1]} inputs, but it follows {before}")
                bias = None
                if len(ins) > 2 and ins[2] >= 0:
                    bias = g.constant(ins[2]).astype(np.float32)
                    if bias.shape != (w.shape[0],):
                        raise ValueError(f"{what}: op {k} FULLY_CONNECTED: bias {g.describe(ins[2])} does "
                                         f"not match {w.shape[0]} outputs")
                layers.append(ir.Dense(name="", weights=w.astype(np.float32), bias=bias, activation=act))
                tensor_names.append([g.tensor(op.outputs()[0]).name(), g.tensor(ins[1]).name()]
                                    + ([g.tensor(ins[2]).name()] if bias is not None else []))
                ops_of.append([k])
                width = w.shape[0]
                activated = act != "linear"
                self.visited.add(k)
            elif name in ("SOFTMAX", "RELU", "RELU6") and layers and not activated:
                if name == "SOFTMAX":
                    beta = S.options_scalar(op.options(), 0, N.Float32Flags, 0.0)
                    if abs(beta - 1.0) > 1e-6:
                        raise ValueError(f"{what}: op {k} SOFTMAX with beta {beta:g} (featx runs beta 1)")
                layers[-1].activation = name.lower()
                tensor_names[-1].insert(1, g.tensor(self.out(k)).name())
                ops_of[-1].append(k)
                activated = True
                self.visited.add(k)
            else:
                after = f"op {ops_of[-1][-1]} {self.name(ops_of[-1][-1])}" if layers else "global pooling"
                raise ValueError(f"{what}: op {k} {name} after {after} is not supported (featx runs "
                                 f"FULLY_CONNECTED layers with activations {', '.join(ir.DENSE_ACTIVATIONS)})")
            x = self.out(k)
            k = g.next_op(x)

        # Names: the Keras layer in the tensor names, the signature's output alias for the
        # last layer, else Keras's defaults dense, dense_1, ...
        signature = None
        for sig in self.model.signature_defs():
            outs = sig.outputs()
            if len(outs) == 1 and outs[0].tensor_index() in g.sg.outputs():
                signature = outs[0].name()
        used = set(used)
        for i, (layer, names) in enumerate(zip(layers, tensor_names)):  # names the file gives first
            candidates = [keras_layer_name(names)]
            if i == len(layers) - 1 and signature and _LAYER_NAME.match(signature):
                candidates.append(signature)
            layer.name = next((c for c in candidates if c and c not in used), "")
            if layer.name:
                used.add(layer.name)
        defaults = (f"dense_{n}" if n else "dense" for n in range(len(layers) + len(used) + 1))
        for i, layer in enumerate(layers):
            if not layer.name:
                layer.name = next(c for c in defaults if c not in used)
                used.add(layer.name)
        for i, layer in enumerate(layers):
            ops = ", ".join(f"{o} {self.name(o)}" for o in ops_of[i])
            self.report.append(f"kept dense '{layer.name}' {layer.in_features} -> {layer.out_features} "
                               f"{layer.activation}{'' if layer.bias is not None else ' (no bias)'} "
                               f"(op{'s' if len(ops_of[i]) > 1 else ''} {ops})")
        return layers


def read_tflite_bytes(data: bytes, what: str = "model.tflite") -> ir.Network:
    """Map a TFLite MobileNetV2 to ir.Network; ValueError names the file and what does not fit."""
    model = S.open_model(data, what)
    try:
        return _read(model, what)
    except (IndexError, TypeError, struct.error, KeyError, OverflowError) as e:  # offsets pointing nowhere
        raise ValueError(f"{what}: truncated or damaged TFLite flatbuffer ({type(e).__name__}: {e})") from None
    except ValueError as e:
        if str(e).startswith(f"{what}:"):
            raise
        # numpy refusing a vector that runs past the end of a truncated file
        raise ValueError(f"{what}: truncated or damaged TFLite flatbuffer ({e})") from None


def _read(model: S.Model, what: str) -> ir.Network:
    graph = _Graph(model, what)
    walk = _Walk(model, graph, what)
    notes = walk.notes
    k, x, input_scale, input_offset = walk.input()
    resolution = walk.h

    if k is None or walk.name(k) not in ("CONV_2D", "PAD"):
        raise ValueError(f"{what}: expected the stem CONV_2D after the input, found {walk.found(k)}")
    stem, x = walk.conv(k, "Conv")
    if stem.kind != "full":
        raise ValueError(f"{what}: expected the stem CONV_2D after the input, found a depthwise conv")
    if stem.kernel.shape[2] != 3:
        raise ValueError(f"{what}: stem kernel {stem.kernel.shape} does not take 3 channels")
    channels = stem.out_channels

    blocks: List[ir.Block] = []
    head = None
    while head is None:
        k, _ = walk.next(x)
        if k is None:
            raise ValueError(f"{what}: graph ends after {graph.describe(x)} without a head conv")
        op_name = walk.name(k)
        if op_name == "CONV_2D":
            after = walk.after_conv(k)
            is_expand = after is not None and walk.name(after) in ("PAD", "DEPTHWISE_CONV_2D")
        elif op_name in ("DEPTHWISE_CONV_2D", "PAD"):
            is_expand = False
        else:
            raise ValueError(f"{what}: op {k} {op_name} on {graph.describe(x)} is not supported "
                             f"(expected a MobileNetV2 conv)")
        if op_name == "CONV_2D" and not is_expand:
            head, x = walk.conv(k, "Conv_1")
            break

        name = ir.block_name(len(blocks))
        expand, y = None, x
        if is_expand:
            expand, y = walk.conv(k, f"{name}/expand")
            k, _ = walk.next(y)
        if k is None or walk.name(k) not in ("PAD", "DEPTHWISE_CONV_2D"):
            raise ValueError(f"{what}: {name}: expected the depthwise conv, found {walk.found(k)}")
        depthwise, y = walk.conv(k, f"{name}/depthwise")
        if depthwise.kind != "depthwise":
            raise ValueError(f"{what}: {name}: PAD is followed by a full conv where the depthwise conv goes")
        p, _ = walk.next(y)
        if p is None or walk.name(p) != "CONV_2D":
            raise ValueError(f"{what}: {name}: depthwise conv is not followed by a project CONV_2D "
                             f"(found {walk.found(p)})")
        project, y = walk.conv(p, f"{name}/project")
        # y also feeds the next block's residual ADD; this block's own adds x and y.
        add = [c for c in graph.consumers.get(y, [])
               if walk.name(c) == "ADD" and sorted(walk.op(c).inputs()) == sorted([x, y])]
        if add:
            act = S.ACTIVATIONS.get(S.options_scalar(walk.op(add[0]).options(), 0, N.Int8Flags, 0), "?")
            if act != "none":
                raise ValueError(f"{what}: op {add[0]} ADD ({name} residual) has fused activation {act}")
            walk.visited.add(add[0])
            y = walk.out(add[0])
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
    k, x = walk.next(x)
    if k is None or walk.name(k) not in ("MEAN", "AVERAGE_POOL_2D"):
        raise ValueError(f"{what}: expected global pooling after the head conv, found {walk.found(k)}")
    pool_name, pool_op = graph.ops[k]
    map_shape = graph.tensor(x).shape()
    if pool_name == "MEAN":
        ins = pool_op.inputs()
        axes = graph.raw_constant(ins[1]) if len(ins) == 2 else None
        if axes is None or sorted(int(a) for a in axes.ravel()) != [1, 2]:
            raise ValueError(f"{what}: op {k} MEAN over axes {None if axes is None else axes.tolist()}, "
                             f"expected [1, 2]")
    else:
        opt = pool_op.options()
        fw, fh = S.options_scalar(opt, 3, N.Int32Flags, 0), S.options_scalar(opt, 4, N.Int32Flags, 0)
        if [fh, fw] != map_shape[1:3]:
            raise ValueError(f"{what}: op {k} AVERAGE_POOL_2D {fh}x{fw} on map {map_shape} is not global")
    walk.visited.add(k)
    x = walk.out(k)

    # Slim / Hub logits: a 1x1 CONV_2D on the pooled vector. Keras Dense layers: FULLY_CONNECTED.
    classifier, dense = None, []
    k, x = walk.next(x, passthrough=_HEAD_PASS)
    if k is not None and walk.name(k) == "CONV_2D":
        op = walk.op(k)
        w = graph.constant(op.inputs()[1])
        _, act, _ = _conv_options(graph, k)
        if w.ndim != 4 or w.shape[1:3] != (1, 1):
            raise ValueError(f"{what}: op {k} logits CONV_2D kernel {w.shape} is not 1x1")
        w = w.reshape(w.shape[0], w.shape[3])
        if act != "none":
            raise ValueError(f"{what}: op {k} logits layer has fused activation {act}")
        if w.shape[1] != head.out_channels:
            raise ValueError(f"{what}: op {k} logits weights {w.shape} do not take {head.out_channels} "
                             f"features")
        inputs = op.inputs()
        bias = graph.constant(inputs[2]).astype(np.float32) if len(inputs) > 2 and inputs[2] >= 0 else None
        classes = w.shape[0]
        # 1001-class files keep "background" at 0 like the labels file; 1000-class ones start at 1.
        classifier = ir.Classifier(weights=w.astype(np.float32), bias=bias,
                                   label_offset=1 if classes == 1000 else 0)
        walk.visited.add(k)
        walk.report.append(f"kept classifier (logits) {head.out_channels} -> {classes} (op {k} CONV_2D)")
        k = graph.next_op(walk.out(k))
        while k is not None:
            if walk.name(k) not in _IGNORED_TAIL:
                raise ValueError(f"{what}: op {k} {walk.name(k)} after the logits is not supported")
            walk.skip(k)
            k = graph.next_op(walk.out(k))
    else:
        used = {c.name for b in blocks for c in (b.expand, b.depthwise, b.project) if c}
        used |= {stem.name, head.name} | {b.name for b in blocks}
        dense = walk.dense_head(k, x, head.out_channels, head.name, used)
        if len(dense) == 1 and dense[0].out_features in (1000, 1001) and dense[0].activation in (
                "linear", "softmax"):
            # The ImageNet top (keras.applications' "predictions"): logits, so a labels file lines up.
            d = dense.pop()
            classifier = ir.Classifier(weights=d.weights, bias=d.bias,
                                       label_offset=1 if d.out_features == 1000 else 0)
            ops = walk.report.pop().rpartition(" (")[2].rstrip(")")
            walk.report.append(f"kept classifier '{d.name}' {d.in_features} -> {d.out_features} ({ops}): "
                               f"the ImageNet top, kept as logits (featx classify applies softmax)")

    # Every op must have been understood (float16 weights' DEQUANTIZE ops aside).
    for i, (op_name, op) in enumerate(graph.ops):
        if i in walk.visited:
            continue
        ins = op.inputs()
        if op_name == "DEQUANTIZE" and len(ins) == 1 and graph.raw_constant(ins[0]) is not None:
            continue
        raise ValueError(f"{what}: op {i} {op_name} is not part of the MobileNetV2 chain featx reads "
                         f"(it reads {', '.join(graph.describe(t) for t in ins if t >= 0) or 'nothing'})")

    alpha = _infer_alpha(stem.out_channels, [b.out_channels for b in blocks])
    kinds = set()
    for i, (op_name, op) in enumerate(graph.ops):
        if op_name in _CONVS + ("FULLY_CONNECTED",):
            t = op.inputs()[1]
            p = graph.producer.get(t)
            if p is not None and graph.ops[p][0] == "DEQUANTIZE":
                t = graph.ops[p][1].inputs()[0]
            kinds.add(graph.tensor(t).type_name())
    quant = sorted(kinds)
    notes.insert(0, f"weights {'/'.join(quant)}{' dequantised' if quant != ['float32'] else ''}; "
                    f"BN folded by the converter (conv bias)")
    walk.report.insert(1, f"weights {'/'.join(quant)}"
                          f"{' dequantised (scale * (q - zero_point))' if quant != ['float32'] else ''}; "
                          f"batch norm already folded by the converter (conv + bias)")
    if walk.pairs:
        walk.report.append(f"{len(walk.pairs)} PAD + VALID conv pairs (PAD ops "
                           f"{', '.join(map(str, walk.pairs))}) equal TF SAME at this file's "
                           f"{resolution}x{graph.tensor(graph.sg.inputs()[0]).shape()[2]} input; featx "
                           f"pads SAME at every input size (docs/tflite.md)")
    if walk.separate:
        walk.report.append(f"activation ops {', '.join(f'{i} {walk.name(i)}' for i in walk.separate)} "
                           f"taken as the activation of the op before each")
    for op_name, ks in walk.skipped.items():
        walk.report.append(f"skipped {op_name} op{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))} "
                           f"({_SKIP_REASON.get(op_name, 'no arithmetic')})")
    net = ir.Network(width_multiplier=alpha, resolution=int(resolution),
                     input_scale=input_scale, input_offset=input_offset, stem=stem, blocks=blocks,
                     head=head, classifier=classifier, source=os.path.basename(what),
                     source_format="tflite", notes="; ".join(notes), dense_head=dense,
                     report=walk.report)
    net.validate()
    return net


def read_tflite(path) -> ir.Network:
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return read_tflite_bytes(data, path)
