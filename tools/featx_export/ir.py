"""The exporter's in-memory model: what every reader produces and the writer consumes.

Every reader (tflite, keras-h5, saved-model, hub, random) builds a `Network`;
`writer.write_featx` turns it into a .featx file and `onnx_export` into an
ONNX graph. Arrays are float32 numpy arrays in TensorFlow layouts:

  full conv kernel     [kh, kw, in, out]  (HWIO)
  depthwise kernel     [kh, kw, channels] (depth multiplier 1)
  classifier weights   [classes, features]
  dense weights        [outputs, inputs]  (Keras kernels are [inputs, outputs]: readers transpose)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

EXPORTER_VERSION = "0.1.0"
FORMAT_VERSION = 1
# Files with a dense head: a version-1 runtime would ignore the head silently.
FORMAT_VERSION_WITH_HEAD = 2
# Prepacked files: every conv folded and packed for the runtime (any head).
FORMAT_VERSION_PREPACKED = 3

DENSE_ACTIVATIONS = ("linear", "relu", "relu6", "softmax")

# MobileNetV2 inverted-residual settings (expansion t, channels c, repeats n, stride s),
# from Sandler et al. 2018, table 2.
MOBILENET_V2_BLOCKS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def apply_scalar_op(scale: float, offset: float, op: str, value: float):
    """(scale, offset) of `(scale * x + offset) op value`, op mul/div/add/sub (any case):
    how a chain of scalar ops on the input (Keras Rescaling / preprocess_input ops,
    TFLite MUL/DIV/ADD/SUB) composes into one input normalisation."""
    op = op.lower()
    if op == "mul":
        return scale * value, offset * value
    if op == "div":
        return scale / value, offset / value
    if op == "add":
        return scale, offset + value
    if op == "sub":
        return scale, offset - value
    raise ValueError(f"scalar op {op!r}: expected mul, div, add or sub")


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Channel rounding used by both slim and Keras MobileNetV2."""
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:  # never round down by more than 10%
        rounded += divisor
    return rounded


def block_name(index: int) -> str:
    """slim's names: expanded_conv, expanded_conv_1, ..., expanded_conv_16."""
    return "expanded_conv" if index == 0 else f"expanded_conv_{index}"


@dataclass
class BatchNorm:
    gamma: np.ndarray
    beta: np.ndarray
    moving_mean: np.ndarray
    moving_variance: np.ndarray
    epsilon: float = 0.001


@dataclass
class Conv:
    name: str
    kind: str  # "full" | "depthwise"
    kernel: np.ndarray  # HWIO or HWC
    stride: int = 1
    bias: Optional[np.ndarray] = None
    batch_norm: Optional[BatchNorm] = None
    activation: str = "none"  # "none" | "relu6" | "relu"

    @property
    def in_channels(self) -> int:
        return int(self.kernel.shape[2])

    @property
    def out_channels(self) -> int:
        return int(self.kernel.shape[3] if self.kind == "full" else self.kernel.shape[2])


@dataclass
class Block:
    name: str
    expansion: int
    stride: int
    in_channels: int
    out_channels: int
    expand: Optional[Conv]
    depthwise: Conv
    project: Conv

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass
class Classifier:
    weights: np.ndarray  # [classes, features]
    bias: Optional[np.ndarray] = None
    label_offset: int = 0

    @property
    def num_classes(self) -> int:
        return int(self.weights.shape[0])


@dataclass
class Dense:
    """One Dense layer of the user's head, applied to the pooled feature vector."""
    name: str
    weights: np.ndarray  # [outputs, inputs]
    bias: Optional[np.ndarray] = None
    activation: str = "linear"  # one of DENSE_ACTIVATIONS

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[0])


@dataclass
class Golden:
    name: str
    input: np.ndarray  # [H, W, 3] float32 in [0, 1]
    output: np.ndarray  # [features]
    pool: str = "avg"
    reference: str = ""
    max_abs_tolerance: float = 5e-5


@dataclass
class Network:
    width_multiplier: float
    resolution: int
    input_scale: float  # internal = input_scale * x + input_offset, x in [0, 1]
    input_offset: float
    stem: Conv
    blocks: List[Block]
    head: Conv
    classifier: Optional[Classifier] = None
    source: str = ""
    source_format: str = ""
    notes: str = ""
    goldens: List[Golden] = field(default_factory=list)
    architecture: str = "mobilenet_v2"
    dense_head: List[Dense] = field(default_factory=list)  # the user's layers after pooling
    labels: List[str] = field(default_factory=list)  # class names of the last layer's outputs
    # What the reader kept and skipped of the source model, one line each
    # ("kept dense 'dense' 1280 -> 128 relu", "skipped dropout 'dropout' (inference)");
    # export_weights prints it, so nothing is dropped silently.
    report: List[str] = field(default_factory=list)

    @property
    def feature_dim(self) -> int:
        return self.head.out_channels

    @property
    def feature_layer(self) -> str:
        return self.head.name

    def layers(self):
        """All conv layers in execution order."""
        yield self.stem
        for block in self.blocks:
            if block.expand is not None:
                yield block.expand
            yield block.depthwise
            yield block.project
        yield self.head

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency (shapes that do not chain)."""
        if self.stem.kind != "full" or self.stem.kernel.shape[2] != 3:
            raise ValueError(f"stem {self.stem.name}: expected a full conv on 3 channels, "
                             f"found kernel {self.stem.kernel.shape}")
        channels = self.stem.out_channels
        for block in self.blocks:
            if block.in_channels != channels:
                raise ValueError(f"{block.name}: input has {block.in_channels} channels, "
                                 f"previous layer gives {channels}")
            inner = channels
            if block.expand is not None:
                if block.expand.in_channels != channels:
                    raise ValueError(f"{block.expand.name}: kernel {block.expand.kernel.shape} "
                                     f"does not take {channels} channels")
                inner = block.expand.out_channels
            if block.depthwise.out_channels != inner:
                raise ValueError(f"{block.depthwise.name}: kernel {block.depthwise.kernel.shape} "
                                 f"does not match {inner} channels")
            if block.project.in_channels != inner or block.project.out_channels != block.out_channels:
                raise ValueError(f"{block.project.name}: kernel {block.project.kernel.shape} "
                                 f"does not map {inner} to {block.out_channels} channels")
            channels = block.out_channels
        if self.head.in_channels != channels:
            raise ValueError(f"{self.head.name}: kernel {self.head.kernel.shape} does not take "
                             f"{channels} channels")
        if self.classifier is not None and self.classifier.weights.shape[1] != self.feature_dim:
            raise ValueError(f"classifier weights {self.classifier.weights.shape} do not take "
                             f"{self.feature_dim} features")
        width = self.feature_dim
        names = {layer.name for layer in self.layers()}
        for dense in self.dense_head:
            if dense.activation not in DENSE_ACTIVATIONS:
                raise ValueError(f"dense layer {dense.name}: unknown activation {dense.activation!r} "
                                 f"(featx runs {', '.join(DENSE_ACTIVATIONS)})")
            if dense.weights.ndim != 2 or dense.in_features != width:
                raise ValueError(f"dense layer {dense.name}: weights {dense.weights.shape} do not "
                                 f"take the {width} values before it")
            if dense.bias is not None and dense.bias.shape != (dense.out_features,):
                raise ValueError(f"dense layer {dense.name}: bias {dense.bias.shape} does not match "
                                 f"{dense.out_features} outputs")
            if dense.name in names:
                raise ValueError(f"dense layer {dense.name}: name used twice")
            names.add(dense.name)
            for arr in (dense.weights, dense.bias):
                if arr is not None and not np.all(np.isfinite(arr)):
                    raise ValueError(f"dense layer {dense.name}: non-finite weights")
            width = dense.out_features
        if self.labels and self.dense_head and len(self.labels) != width:
            raise ValueError(f"{len(self.labels)} labels for {width} outputs of the last layer "
                             f"{self.dense_head[-1].name}")
        for layer in self.layers():
            for arr in (layer.kernel, layer.bias):
                if arr is not None and not np.all(np.isfinite(arr)):
                    raise ValueError(f"{layer.name}: non-finite weights")
