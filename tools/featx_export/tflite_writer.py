"""ir.Network -> a .tflite laid out the way TF's Keras converter writes it (for tests).

tf.lite.TFLiteConverter.from_keras_model is not available here (no
TensorFlow), so the reader's tests write its layout themselves, from a
random network, with the flatbuffers Builder and the public TFLite schema
(field slots as in tflite_schema.py). What the converter does, and this
writer copies:

- Batch norm is folded into each conv (w' = w·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε));
  ReLU6 is fused into the conv (fused_activation_function RELU6), or, with
  separate_activations, left as RELU6 ops after convs with NONE.
- Keras MobileNetV2's stride-2 depthwise convs are ZeroPadding2D(correct_pad)
  + a VALID DepthwiseConv2D: a PAD op with paddings [[0,0],[t,b],[l,r],[0,0]]
  then DEPTHWISE_CONV_2D VALID. Its stem Conv1 is padding='same' in Keras 2.x
  (CONV_2D SAME) and Conv1_pad + VALID in keras-applications 1.0.x
  (stem_padding="pad"). `pads` overrides correct_pad, to write files whose
  pads are not TF SAME.
- Kernels OHWI (CONV_2D), [1, kh, kw, C] (DEPTHWISE_CONV_2D); residual ADD;
  GlobalAveragePooling2D is MEAN over [1, 2] with keep_dims false; each Dense
  is FULLY_CONNECTED (weights [out, in], bias or -1, RELU/RELU6 fused) and a
  softmax Dense is FULLY_CONNECTED + SOFTMAX (beta 1).
- Tensor names as the MLIR converter merges them
  ("sequential/dense/MatMul;sequential/dense/Relu;sequential/dense/BiasAdd"),
  the graph output renamed "StatefulPartitionedCall:0", a serving_default
  signature, the "min_runtime_version" metadata; tensors ordered input,
  constants, activations; buffer 0 empty, one buffer per tensor.
- quantization: "float32"; "float16" (float16 constants + DEQUANTIZE ops);
  "dynamic" (dynamic-range: int8 symmetric weights per output channel for
  convs, per tensor for FULLY_CONNECTED, only tensors of >= 1024 values like
  the converter's default; float biases and activations); "int8" (full
  integer: int8 weights per channel (FULLY_CONNECTED per tensor), int32
  biases with scale s_in·s_w, int8 activations, float input and output
  through QUANTIZE / DEQUANTIZE unless input_type is "int8" / "uint8");
  "uint8" (per-tensor asymmetric uint8 weights, int32 biases, uint8
  activations and a uint8 input with scale 1/128, zero point 128, like the
  TF1 quantisation-aware files).
- Activation ranges of the integer files are fixed ([0, 6] after ReLU6,
  [-10, 10] elsewhere, softmax 1/256) rather than calibrated: featx computes
  in float and only the input tensor's quantisation and the weights matter.
- preprocessing: [("MUL", 1/127.5), ("ADD", -1.0)] (a Keras Rescaling layer)
  or ("SUB", c) / ("DIV", c) ops with scalar constants right after the input.

write_tflite returns a TfliteFile: the bytes and the ir.Network the reader
must produce from them (folded, dequantised weights; slim layer names).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import flatbuffers
import numpy as np

from . import ir

OPCODES = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4, "DEQUANTIZE": 6,
           "FULLY_CONNECTED": 9, "LOGISTIC": 14, "MUL": 18, "RELU": 19, "RELU6": 21, "RESHAPE": 22,
           "SOFTMAX": 25, "TANH": 28, "PAD": 34, "MEAN": 40, "SUB": 41, "DIV": 42, "QUANTIZE": 114,
           "HARD_SWISH": 117}
# BuiltinOptions union members (1-based position in the schema's union).
OPTION_TYPES = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 2, "AVERAGE_POOL_2D": 5, "FULLY_CONNECTED": 8,
                "SOFTMAX": 9, "ADD": 11, "RESHAPE": 17, "MUL": 21, "PAD": 22, "MEAN": 27, "SUB": 28,
                "DIV": 29, "DEQUANTIZE": 38, "QUANTIZE": 89, "HARD_SWISH": 91}
TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "int8": 9}
ACTIVATIONS = {"none": 0, "linear": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3, "tanh": 4}
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "uint8")
DYNAMIC_MIN_ELEMENTS = 1024  # the converter leaves smaller weight tensors in float


@dataclass
class TfliteFile:
    data: bytes
    expected: ir.Network  # what tflite_reader must read from `data`


def same_pads(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def correct_pad(h: int, w: int, kernel: int = 3):
    """keras.applications' correct_pad for a known input size."""
    adjust = (1 - h % 2, 1 - w % 2)
    c = kernel // 2
    return (c - adjust[0], c), (c - adjust[1], c)


def fold_batch_norm(net: ir.Network) -> ir.Network:
    """A copy of `net` with every conv's batch norm folded into kernel and bias (float64, rounded once)."""
    out = copy.deepcopy(net)
    for layer in out.layers():
        bn = layer.batch_norm
        if bn is None:
            continue
        s = bn.gamma.astype(np.float64) / np.sqrt(bn.moving_variance.astype(np.float64) + float(bn.epsilon))
        b = layer.bias.astype(np.float64) if layer.bias is not None else 0.0
        layer.kernel = (layer.kernel.astype(np.float64) * s).astype(np.float32)  # out channel is the last axis
        layer.bias = (bn.beta.astype(np.float64) + (b - bn.moving_mean.astype(np.float64)) * s).astype(np.float32)
        layer.batch_norm = None
    return out


def _dequantize(q, scale, zero_point, axis):
    """As the reader does: (q - zp) * scale in float64, then float32."""
    scale = np.asarray(scale, np.float32).astype(np.float64)
    zp = np.asarray(zero_point, np.int64).astype(np.float64)
    if scale.size == 1:
        return ((q.astype(np.float64) - zp[0]) * scale[0]).astype(np.float32)
    shape = [1] * q.ndim
    shape[axis] = scale.size
    return ((q.astype(np.float64) - zp.reshape(shape)) * scale.reshape(shape)).astype(np.float32)


def _symmetric(w: np.ndarray, axis: Optional[int]):
    """int8 symmetric quantisation, per tensor (axis None) or per slice along `axis`."""
    w = w.astype(np.float64)
    if axis is None:
        amax = np.array([np.abs(w).max()])
    else:
        amax = np.abs(np.moveaxis(w, axis, 0)).reshape(w.shape[axis], -1).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = scale.size
    q = np.clip(np.round(w / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, scale, np.zeros(scale.size, np.int64)


def _asymmetric_uint8(w: np.ndarray):
    w = w.astype(np.float64)
    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    scale = np.float32((hi - lo) / 255.0 if hi > lo else 1.0)
    zp = int(np.clip(round(-lo / float(scale)), 0, 255))
    q = np.clip(np.round(w / float(scale)) + zp, 0, 255).astype(np.uint8)
    return q, np.array([scale], np.float32), np.array([zp], np.int64)


class _Tensor:
    def __init__(self, shape, dtype, name, data=None, quant=None, kind="act"):
        self.shape = [int(v) for v in shape]
        self.dtype = dtype
        self.name = name
        self.data = data  # little-endian bytes for constants
        self.quant = quant  # (scale [f32], zero_point [i64], quantized_dimension) or None
        self.kind = kind  # "input" | "const" | "act"


class _Builder:
    """The graph as lists of tensors and ops, serialised into a TFLite FlatBuffer at the end."""

    def __init__(self):
        self.tensors: List[_Tensor] = []
        self.ops = []  # (opcode name, inputs, outputs, options or None)

    def tensor(self, shape, dtype, name, data=None, quant=None, kind="act") -> int:
        self.tensors.append(_Tensor(shape, dtype, name, data, quant, kind))
        return len(self.tensors) - 1

    def const(self, arr: np.ndarray, name, quant=None) -> int:
        dtype = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16",
                 np.dtype(np.int32): "int32", np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8",
                 np.dtype(np.int64): "int64"}[arr.dtype]
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        return self.tensor(arr.shape, dtype, name, data, quant, kind="const")

    def op(self, name, inputs, outputs, options=None):
        self.ops.append((name, list(inputs), list(outputs), options))

    # -- serialisation ---------------------------------------------------------------------------

    def finish(self, inputs, outputs, signature_inputs, signature_outputs, tensor_names=True) -> bytes:
        order = sorted(range(len(self.tensors)),
                       key=lambda i: ({"input": 0, "const": 1, "act": 2}[self.tensors[i].kind], i))
        new = {old: k for k, old in enumerate(order)}
        remap = lambda ids: [new[i] if i >= 0 else -1 for i in ids]  # noqa: E731
        tensors = [self.tensors[i] for i in order]
        codes = []
        for name, *_ in self.ops:
            if name not in codes:
                codes.append(name)

        b = flatbuffers.Builder(1024 + sum(len(t.data or b"") for t in tensors))

        def ints(values, dtype="<i4"):
            return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

        def offsets(offs):
            b.StartVector(4, len(offs), 4)
            for o in reversed(offs):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        prepend = {"off": b.PrependUOffsetTRelativeSlot, "u8": b.PrependUint8Slot,
                   "i8": b.PrependInt8Slot, "i32": b.PrependInt32Slot, "u32": b.PrependUint32Slot,
                   "f32": b.PrependFloat32Slot, "bool": b.PrependBoolSlot}

        def table(fields):
            """fields: (slot, kind, value[, default]); kind 'off' | 'u8' | 'i8' | 'i32' | 'u32' | 'f32' | 'bool'."""
            b.StartObject(max(f[0] for f in fields) + 1 if fields else 0)
            for slot, kind, value, *default in fields:
                prepend[kind](slot, value, default[0] if default and kind != "off" else 0)
            return b.EndObject()

        # Buffers: 0 is the empty sentinel, then one per tensor, then the metadata buffer.
        buffers = [table([])]
        for t in tensors:
            if t.data:
                b.StartVector(1, len(t.data), 16)  # force_align: 16
                b.head = b.head - len(t.data)
                b.Bytes[b.head:b.head + len(t.data)] = t.data
                buffers.append(table([(0, "off", b.EndVector())]))
            else:
                buffers.append(table([]))
        runtime = ints(np.frombuffer(b"1.14.0".ljust(16, b"\0"), np.uint8), "u1")
        buffers.append(table([(0, "off", runtime)]))
        metadata_buffer = len(buffers) - 1

        tensor_offs = []
        for k, t in enumerate(tensors):
            shape, name = ints(t.shape), b.CreateString(t.name if tensor_names else f"tensor_{k}")
            fields = [(0, "off", shape), (1, "i8", TYPES[t.dtype]), (2, "u32", k + 1), (3, "off", name)]
            if t.quant is not None:
                scale, zp, dim = t.quant
                q = table([(2, "off", b.CreateNumpyVector(np.asarray(scale, "<f4"))),
                           (3, "off", b.CreateNumpyVector(np.asarray(zp, "<i8"))),
                           (6, "i32", int(dim))])
                fields.append((4, "off", q))
            fields.append((7, "off", ints(t.shape)))  # shape_signature
            tensor_offs.append(table(fields))

        op_offs = []
        for name, ins, outs, options in self.ops:
            in_vec, out_vec = ints(remap(ins)), ints(remap(outs))
            opt = None
            if name in OPTION_TYPES:
                fields = []
                for slot, kind, value, *default in (options or []):
                    if kind == "ivec":
                        fields.append((slot, "off", ints(value)))
                    else:
                        fields.append((slot, kind, value, *default))
                opt = table(fields)
            fields = [(0, "u32", codes.index(name)), (1, "off", in_vec), (2, "off", out_vec)]
            if opt is not None:
                fields += [(3, "u8", OPTION_TYPES[name]), (4, "off", opt)]
            op_offs.append(table(fields))

        sg_name = b.CreateString("main")
        subgraph = table([(0, "off", offsets(tensor_offs)), (1, "off", ints(remap(inputs))),
                          (2, "off", ints(remap(outputs))), (3, "off", offsets(op_offs)),
                          (4, "off", sg_name)])
        code_offs = [table([(0, "i8", min(OPCODES[c], 127)), (2, "i32", 1, 1), (3, "i32", OPCODES[c])])
                     for c in codes]

        def tensor_maps(pairs):
            maps = []
            for alias, index in pairs:
                s = b.CreateString(alias)
                maps.append(table([(0, "off", s), (1, "u32", new[index])]))
            return offsets(maps)

        signatures = []
        if signature_outputs is not None:
            sig_in, sig_out = tensor_maps(signature_inputs), tensor_maps(signature_outputs)
            key = b.CreateString("serving_default")
            signatures.append(table([(0, "off", sig_in), (1, "off", sig_out), (2, "off", key), (4, "u32", 0)]))
        meta_name = b.CreateString("min_runtime_version")
        metadata = table([(0, "off", meta_name), (1, "u32", metadata_buffer)])
        description = b.CreateString("MLIR Converted.")
        model = table([(0, "u32", 3), (1, "off", offsets(code_offs)), (2, "off", offsets([subgraph])),
                       (3, "off", description), (4, "off", offsets(buffers)),
                       (6, "off", offsets([metadata])), (7, "off", offsets(signatures))])
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())


class _Emitter:
    """Walks the folded network and emits the converter's ops, tracking the activation tensor."""

    def __init__(self, net: ir.Network, quantization: str, separate_activations: bool,
                 pads: Callable, outer: str, model_name: str):
        self.net = net
        self.q = quantization
        self.sep = separate_activations
        self.pads = pads
        self.outer = outer
        self.prefix = f"{outer}/{model_name}/"
        self.g = _Builder()
        self.expected_layers = {}  # slim name -> (kernel, bias) as the reader must see them
        self.dense_expected = []

    # -- quantisation ----------------------------------------------------------------------------

    @property
    def integer(self) -> bool:
        return self.q in ("int8", "uint8")

    def act_quant(self, activation: str):
        """Fixed ranges for integer activations: ReLU6 onto [0, 6], others [-10, 10]."""
        if not self.integer:
            return None
        lo_q = -128 if self.q == "int8" else 0
        if activation == "relu6":
            return [np.float32(6.0 / 255)], [lo_q], 0
        if activation == "softmax":
            return [np.float32(1.0 / 256)], [lo_q], 0
        return [np.float32(20.0 / 255)], [lo_q + 128], 0

    def act(self, shape, name, activation="none"):
        dtype = self.q if self.integer else "float32"
        return self.g.tensor(shape, dtype, name, quant=self.act_quant(activation))

    def weights(self, w: np.ndarray, name: str, axis: Optional[int]):
        """Weight constant in this file's type -> (tensor index, what the reader dequantises to, scale)."""
        w = np.ascontiguousarray(w, np.float32)
        if self.q == "float32" or (self.q == "dynamic" and w.size < DYNAMIC_MIN_ELEMENTS):
            return self.g.const(w, name), w, None
        if self.q == "float16":
            h = w.astype(np.float16)
            half = self.g.const(h, name)
            out = self.g.tensor(w.shape, "float32", name + "_dequantize")  # a float activation-like tensor
            self.g.op("DEQUANTIZE", [half], [out])
            return out, h.astype(np.float32), None
        if self.q == "uint8":
            q, scale, zp = _asymmetric_uint8(w)
            axis = 0
        else:
            q, scale, zp = _symmetric(w, axis)
            axis = 0 if axis is None else axis
        t = self.g.const(q, name, quant=(scale, zp, axis))
        return t, _dequantize(q, scale, zp, axis), scale

    def bias(self, b: Optional[np.ndarray], name: str, in_tensor: int, w_scale):
        if b is None:
            return -1, None
        b = np.ascontiguousarray(b, np.float32)
        if self.q in ("float32", "dynamic"):
            return self.g.const(b, name), b
        if self.q == "float16":
            h = b.astype(np.float16)
            half = self.g.const(h, name)
            out = self.g.tensor(b.shape, "float32", name + "_dequantize")
            self.g.op("DEQUANTIZE", [half], [out])
            return out, h.astype(np.float32)
        s_in = np.float64(self.g.tensors[in_tensor].quant[0][0])
        scale = (s_in * w_scale.astype(np.float64)).astype(np.float32)
        q = np.round(b.astype(np.float64) / scale.astype(np.float64)).astype(np.int32)
        zp = np.zeros(scale.size, np.int64)
        t = self.g.const(q, name, quant=(scale, zp, 0))
        return t, _dequantize(q, scale, zp, 0)

    # -- layers ----------------------------------------------------------------------------------

    def conv(self, x, layer: ir.Conv, h, w, keras: dict, pad=None):
        """Emit [PAD] + conv (+ separate RELU6); keras: names conv / bn / relu. Returns (tensor, h, w)."""
        p = self.prefix
        k = int(layer.kernel.shape[0])
        if pad is not None:
            (t, bt), (l, r) = pad
            paddings = self.g.const(np.array([[0, 0], [t, bt], [l, r], [0, 0]], np.int32),
                                    f"{p}{keras['pad']}/Pad/paddings")
            c = int(self.g.tensors[x].shape[3])
            h, w = h + t + bt, w + l + r
            y = self.g.tensor([1, h, w, c], self.g.tensors[x].dtype, f"{p}{keras['pad']}/Pad",
                              quant=self.g.tensors[x].quant)  # PAD keeps its input's quantisation
            self.g.op("PAD", [x, paddings], [y], [])
            x = y
            oh, ow = (h - k) // layer.stride + 1, (w - k) // layer.stride + 1
            padding = 1  # VALID
        else:
            oh, ow = -(-h // layer.stride), -(-w // layer.stride)
            padding = 0  # SAME
        op_kind = "CONV_2D" if layer.kind == "full" else "DEPTHWISE_CONV_2D"
        op_suffix = "Conv2D" if layer.kind == "full" else "depthwise"
        if layer.kind == "full":
            kernel, axis = layer.kernel.transpose(3, 0, 1, 2), 0  # HWIO -> OHWI
        else:
            kernel, axis = layer.kernel[None], 3  # HWC -> [1, kh, kw, C]
        conv_name = f"{p}{keras['conv']}/{op_suffix}"
        wt, w_read, w_scale = self.weights(kernel, conv_name, axis)
        bt_, b_read = self.bias(layer.bias, f"{p}{keras['bn']}/FusedBatchNormV3", x, w_scale)
        out_c = layer.out_channels
        fused = layer.activation if not self.sep else "none"
        merged = f"{p}{keras['bn']}/FusedBatchNormV3;{conv_name}"
        if fused == "relu6":
            merged = f"{p}{keras['relu']}/Relu6;" + merged
        y = self.act([1, oh, ow, out_c], merged, fused)
        if layer.kind == "full":
            options = [(0, "i8", padding), (1, "i32", layer.stride), (2, "i32", layer.stride),
                       (3, "i8", ACTIVATIONS[fused]), (4, "i32", 1, 1), (5, "i32", 1, 1)]
        else:
            options = [(0, "i8", padding), (1, "i32", layer.stride), (2, "i32", layer.stride),
                       (3, "i32", 1), (4, "i8", ACTIVATIONS[fused]), (5, "i32", 1, 1), (6, "i32", 1, 1)]
        self.g.op(op_kind, [x, wt, bt_], [y], options)
        if self.sep and layer.activation != "none":
            op = {"relu6": "RELU6", "relu": "RELU"}[layer.activation]
            z = self.act([1, oh, ow, out_c], f"{p}{keras['relu']}/{op.title()}", layer.activation)
            self.g.op(op, [y], [z])
            y = z
        read_kernel = w_read.transpose(1, 2, 3, 0) if layer.kind == "full" else w_read[0]
        self.expected_layers[layer.name] = (np.ascontiguousarray(read_kernel), b_read)
        return y, oh, ow

    def dense(self, x, d: ir.Dense, last: bool):
        """FULLY_CONNECTED (+ SOFTMAX, or a RELU / RELU6 op with separate_activations).

        For the reader's refusal tests, activation "tanh" is fused (code 4) and
        "sigmoid" becomes a LOGISTIC op, as the converter writes them.
        """
        o = self.outer
        fused = d.activation if d.activation in ("relu", "relu6") and not self.sep else "none"
        fused = "tanh" if d.activation == "tanh" else fused
        wt, w_read, w_scale = self.weights(d.weights, f"{o}/{d.name}/MatMul", None)
        bt, b_read = self.bias(d.bias, f"{o}/{d.name}/BiasAdd/ReadVariableOp", x, w_scale)
        parts = [f"{o}/{d.name}/MatMul"]
        if fused != "none":
            parts.append(f"{o}/{d.name}/{'Relu6' if fused == 'relu6' else 'Relu'}")
        if d.bias is not None:
            parts.append(f"{o}/{d.name}/BiasAdd")
        y = self.act([1, d.out_features], ";".join(parts), fused)
        self.g.op("FULLY_CONNECTED", [x, wt, bt], [y],
                  [(0, "i8", ACTIVATIONS[fused]), (1, "i8", 0), (2, "bool", False),
                   (3, "bool", self.q == "dynamic")])
        if d.activation == "softmax":
            z = self.act([1, d.out_features], f"{o}/{d.name}/Softmax", "softmax")
            self.g.op("SOFTMAX", [y], [z], [(0, "f32", 1.0)])
            y = z
        elif d.activation == "sigmoid":
            z = self.act([1, d.out_features], f"{o}/{d.name}/Sigmoid", "none")
            self.g.op("LOGISTIC", [y], [z])
            y = z
        elif d.activation in ("relu", "relu6") and self.sep:
            op = "RELU6" if d.activation == "relu6" else "RELU"
            z = self.act([1, d.out_features], f"{o}/{d.name}/{op.title()}", d.activation)
            self.g.op(op, [y], [z])
            y = z
        self.dense_expected.append(ir.Dense(name=d.name, weights=w_read, bias=b_read,
                                            activation=d.activation))
        return y


def _keras_block_names(i: int) -> dict:
    p = "expanded_conv_" if i == 0 else f"block_{i}_"
    return {part: {"conv": f"{p}{part}", "bn": f"{p}{part}_BN", "relu": f"{p}{part}_relu",
                   "pad": f"{p}pad"} for part in ("expand", "depthwise", "project")}


def write_tflite(net: ir.Network, path=None, *, quantization: str = "float32",
                 input_size: Optional[Tuple[int, int]] = None, stem_padding: str = "same",
                 pads: Optional[Callable] = None, preprocessing: Sequence = (),
                 separate_activations: bool = False, input_type: Optional[str] = None,
                 outer: str = "sequential", model_name: Optional[str] = None,
                 tensor_names: bool = True, signature: bool = True) -> TfliteFile:
    """Write `net` (raw batch norm allowed: it is folded here) as the Keras converter would.

    pads(layer, h, w) -> ((top, bottom), (left, right)) replaces correct_pad for the
    stride-2 depthwise convs (layer "block_1_pad", ...) and, with stem_padding="pad",
    the stem ("Conv1_pad"). tensor_names=False names every tensor "tensor_<i>" and
    signature=False leaves out the serving_default signature (for the reader's
    fallback Dense names).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {quantization!r}: expected one of {', '.join(QUANTIZATIONS)}")
    if net.classifier is not None:
        raise ValueError("the Keras layout has no slim classifier: put the classes in net.dense_head")
    if stem_padding not in ("same", "pad"):
        raise ValueError(f"stem_padding {stem_padding!r}: expected 'same' or 'pad'")
    integer = quantization in ("int8", "uint8")
    if input_type is None:
        input_type = "uint8" if quantization == "uint8" else "float32"
    if input_type != "float32" and not integer:
        raise ValueError(f"input_type {input_type} needs an integer quantization")
    if preprocessing and (integer or quantization == "float16"):
        raise ValueError("preprocessing ops are written for float32 and dynamic files only")
    h, w = input_size or (net.resolution, net.resolution)
    model_name = model_name or f"mobilenetv2_{net.width_multiplier:.2f}_{net.resolution}"
    pads = pads or (lambda layer, ph, pw: correct_pad(ph, pw))
    folded = fold_batch_norm(net)
    e = _Emitter(folded, quantization, separate_activations, pads, outer, model_name)
    g = e.g

    # Input (and the converter's QUANTIZE for an integer graph with a float input).
    input_name = f"serving_default_{model_name}_input:0"
    if input_type == "float32":
        x = g.tensor([1, h, w, 3], "float32", input_name, kind="input")
        input_scale, input_offset = 2.0, -1.0
    else:
        # [-1, 1] at the input: uint8 q = 255 x with scale 1/128, zp 128 (the TF1 files);
        # int8 q = 255 x - 128 with scale 2/255, zp -1.
        scale, zp = (np.float32(1 / 128), 128) if input_type == "uint8" else (np.float32(2 / 255), -1)
        x = g.tensor([1, h, w, 3], input_type, input_name, quant=([scale], [zp], 0), kind="input")
        s = float(scale)
        shift = 0 if input_type == "uint8" else 128
        input_scale, input_offset = 255.0 * s, -s * (zp + shift)
    graph_input = x
    if integer and input_type == "float32":
        y = g.tensor([1, h, w, 3], quantization, "tfl.quantize",
                     quant=([np.float32(2 / 255)], [-1 if quantization == "int8" else 128], 0))
        g.op("QUANTIZE", [x], [y])
        x = y
    if preprocessing:
        mul, add = 1.0, 0.0
        for k, (op, value) in enumerate(preprocessing):
            c = g.const(np.array(value, np.float32), f"{outer}/rescaling/{op.lower()}/y")
            y = g.tensor([1, h, w, 3], "float32", f"{outer}/rescaling/{op.lower()}" + (f"_{k}" if k else ""))
            g.op(op, [x, c], [y], [(0, "i8", 0)])
            x = y
            v = float(np.float32(value)) if np.ndim(value) == 0 else float("nan")
            mul, add = ir.apply_scalar_op(mul, add, op, v)
        input_scale, input_offset = 255.0 * mul, add  # the graph takes pixel values in [0, 255]

    # Stem.
    stem_keras = {"conv": "Conv1", "bn": "bn_Conv1", "relu": "Conv1_relu", "pad": "Conv1_pad"}
    pad = pads("Conv1_pad", h, w) if stem_padding == "pad" else None
    x, h, w = e.conv(x, folded.stem, h, w, stem_keras, pad)

    for i, block in enumerate(folded.blocks):
        names = _keras_block_names(i)
        block_in = x
        y, bh, bw = x, h, w
        if block.expand is not None:
            y, bh, bw = e.conv(y, block.expand, bh, bw, names["expand"])
        pad = pads(names["depthwise"]["pad"], bh, bw) if block.stride == 2 else None
        y, bh, bw = e.conv(y, block.depthwise, bh, bw, names["depthwise"], pad)
        y, bh, bw = e.conv(y, block.project, bh, bw, names["project"])
        if block.residual:
            z = e.act([1, bh, bw, block.out_channels], f"{e.prefix}block_{i}_add/add")
            g.op("ADD", [block_in, y], [z], [(0, "i8", 0)])
            y = z
        x, h, w = y, bh, bw

    x, h, w = e.conv(x, folded.head, h, w, {"conv": "Conv_1", "bn": "Conv_1_bn", "relu": "out_relu"})
    axes = g.const(np.array([1, 2], np.int32), f"{e.prefix}global_average_pooling2d/Mean/reduction_indices")
    pooled = e.act([1, folded.feature_dim], f"{e.prefix}global_average_pooling2d/Mean")
    if integer:
        g.tensors[pooled].quant = g.tensors[x].quant
    g.op("MEAN", [x, axes], [pooled], [(0, "bool", False)])
    x = pooled
    for k, d in enumerate(folded.dense_head):
        x = e.dense(x, d, last=k == len(folded.dense_head) - 1)
    if integer and input_type == "float32":
        out = g.tensor(g.tensors[x].shape, "float32", "StatefulPartitionedCall:0")
        g.op("DEQUANTIZE", [x], [out])
        x = out
    else:
        g.tensors[x].name = "StatefulPartitionedCall:0"
    output_alias = folded.dense_head[-1].name if folded.dense_head else "global_average_pooling2d"
    data = g.finish([graph_input], [x], [(f"{model_name}_input", graph_input)],
                    [(output_alias, x)] if signature else None, tensor_names)

    expected = copy.deepcopy(folded)
    for layer in expected.layers():
        layer.kernel, layer.bias = e.expected_layers[layer.name]
    expected.dense_head = e.dense_expected
    expected.input_scale, expected.input_offset = input_scale, input_offset
    expected.resolution = int(input_size[0]) if input_size else net.resolution
    expected.source_format = "tflite"
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return TfliteFile(data=data, expected=expected)
