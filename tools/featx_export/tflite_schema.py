"""Minimal read-only view of a TFLite FlatBuffer, without the tflite package.

Only the tables and fields the MobileNetV2 reader needs. Field slots follow
the public TFLite schema (tensorflow/lite/schema/schema.fbs); a slot's vtable
offset is 4 + 2 * field_index. Unknown files fail with ValueError, never with
an IndexError from deep inside the flatbuffers runtime.
"""

from __future__ import annotations

import struct
from typing import List, Optional

import numpy as np
from flatbuffers import number_types as N
from flatbuffers.table import Table

# enum TensorType
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64",
                5: "string", 6: "bool", 7: "int16", 9: "int8"}
NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32,
                "uint8": np.uint8, "int64": np.int64, "int16": np.int16, "int8": np.int8}

# enum BuiltinOperator (the subset we recognise; others are reported by number)
BUILTIN_OPS = {0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D",
               4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC",
               17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1", 21: "RELU6",
               22: "RESHAPE", 25: "SOFTMAX", 28: "TANH", 34: "PAD", 39: "TRANSPOSE", 40: "MEAN",
               41: "SUB", 42: "DIV", 43: "SQUEEZE", 55: "MAXIMUM", 57: "MINIMUM", 60: "PADV2",
               98: "LEAKY_RELU", 100: "MIRROR_PAD", 114: "QUANTIZE", 117: "HARD_SWISH",
               150: "GELU"}

# enum ActivationFunctionType
ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}

# enum Padding
PADDINGS = {0: "SAME", 1: "VALID"}

class _View:
    """A table in the buffer with typed field access by field index."""

    def __init__(self, buf: bytearray, pos: int):
        self._tab = Table(buf, pos)

    def _offset(self, index: int) -> int:
        return self._tab.Offset(4 + 2 * index)

    def _scalar(self, index: int, flags, default):
        o = self._offset(index)
        return self._tab.Get(flags, o + self._tab.Pos) if o else default

    def _table(self, index: int, cls):
        o = self._offset(index)
        return cls(self._tab.Bytes, self._tab.Indirect(o + self._tab.Pos)) if o else None

    def _tables(self, index: int, cls) -> list:
        o = self._offset(index)
        if not o:
            return []
        start = self._tab.Vector(o)
        return [cls(self._tab.Bytes, self._tab.Indirect(start + 4 * i))
                for i in range(self._tab.VectorLen(o))]

    def _numbers(self, index: int, flags) -> Optional[np.ndarray]:
        o = self._offset(index)
        return self._tab.GetVectorAsNumpy(flags, o) if o else None

    def _string(self, index: int) -> str:
        o = self._offset(index)
        return self._tab.String(o + self._tab.Pos).decode("utf-8", "replace") if o else ""


class QuantizationParameters(_View):
    def scale(self):
        return self._numbers(2, N.Float32Flags)

    def zero_point(self):
        return self._numbers(3, N.Int64Flags)

    def quantized_dimension(self) -> int:
        return self._scalar(6, N.Int32Flags, 0)


class Tensor(_View):
    def shape(self) -> List[int]:
        arr = self._numbers(0, N.Int32Flags)
        return [] if arr is None else [int(v) for v in arr]

    def type_name(self) -> str:
        code = self._scalar(1, N.Int8Flags, 0)
        return TENSOR_TYPES.get(code, f"type#{code}")

    def buffer(self) -> int:
        return self._scalar(2, N.Uint32Flags, 0)

    def name(self) -> str:
        return self._string(3)

    def quantization(self) -> Optional[QuantizationParameters]:
        return self._table(4, QuantizationParameters)

    def shape_signature(self) -> Optional[List[int]]:
        """The shape with -1 for dynamic dimensions (newer converters), or None."""
        arr = self._numbers(7, N.Int32Flags)
        return None if arr is None else [int(v) for v in arr]


class Buffer(_View):
    def data(self) -> Optional[np.ndarray]:
        return self._numbers(0, N.Uint8Flags)

    def external(self) -> bool:
        # offset/size (fields 1, 2) point outside the flatbuffer (models > 2 GB)
        return self._scalar(1, N.Uint64Flags, 0) > 1


class Operator(_View):
    def opcode_index(self) -> int:
        return self._scalar(0, N.Uint32Flags, 0)

    def inputs(self) -> List[int]:
        arr = self._numbers(1, N.Int32Flags)
        return [] if arr is None else [int(v) for v in arr]

    def outputs(self) -> List[int]:
        arr = self._numbers(2, N.Int32Flags)
        return [] if arr is None else [int(v) for v in arr]

    def options(self) -> Optional[Table]:
        # builtin_options is a union (type at field 3, value at field 4)
        o = self._offset(4)
        if not o:
            return None
        return Table(self._tab.Bytes, self._tab.Indirect(o + self._tab.Pos))


class OperatorCode(_View):
    def builtin_code(self) -> int:
        # Old files only have the deprecated byte; new ones put 127 ("placeholder for
        # greater op codes") there when the real code needs builtin_code: the larger wins.
        return max(self._scalar(0, N.Int8Flags, 0), self._scalar(3, N.Int32Flags, 0))

    def custom_code(self) -> str:
        return self._string(1)

    def name(self) -> str:
        code = self.builtin_code()
        if code == 32:  # CUSTOM
            return f"CUSTOM({self.custom_code()})"
        return BUILTIN_OPS.get(code, f"builtin#{code}")


class SubGraph(_View):
    def tensors(self) -> List[Tensor]:
        return self._tables(0, Tensor)

    def inputs(self) -> List[int]:
        return [int(v) for v in self._numbers(1, N.Int32Flags)]

    def outputs(self) -> List[int]:
        return [int(v) for v in self._numbers(2, N.Int32Flags)]

    def operators(self) -> List[Operator]:
        return self._tables(3, Operator)


class TensorMap(_View):
    def name(self) -> str:
        return self._string(0)

    def tensor_index(self) -> int:
        return self._scalar(1, N.Uint32Flags, 0)


class SignatureDef(_View):
    def inputs(self) -> List[TensorMap]:
        return self._tables(0, TensorMap)

    def outputs(self) -> List[TensorMap]:
        return self._tables(1, TensorMap)

    def signature_key(self) -> str:
        return self._string(2)

    def subgraph_index(self) -> int:
        return self._scalar(4, N.Uint32Flags, 0)


class Model(_View):
    def version(self) -> int:
        return self._scalar(0, N.Uint32Flags, 0)

    def operator_codes(self) -> List[OperatorCode]:
        return self._tables(1, OperatorCode)

    def subgraphs(self) -> List[SubGraph]:
        return self._tables(2, SubGraph)

    def buffers(self) -> List[Buffer]:
        return self._tables(4, Buffer)

    def signature_defs(self) -> List[SignatureDef]:
        return self._tables(7, SignatureDef)


def options_scalar(options: Optional[Table], index: int, flags, default):
    """Read field `index` of a builtin-options table (Conv2DOptions etc.)."""
    if options is None:
        return default
    o = options.Offset(4 + 2 * index)
    return options.Get(flags, o + options.Pos) if o else default


def open_model(data: bytes, what: str) -> Model:
    """Check that `data` looks like a TFLite model (identifier "TFL3") and return its root."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        found = data[4:8] if len(data) >= 8 else data[:8]
        raise ValueError(f"{what}: not a TFLite model (file identifier {found!r}, expected b'TFL3')")
    (root,) = struct.unpack_from("<I", data, 0)
    if root >= len(data):
        raise ValueError(f"{what}: truncated TFLite model (root offset {root} past end {len(data)})")
    return Model(bytearray(data), root)
