"""MobileNetV2 variable names, both ways: TF-slim ("MobilenetV2/Conv/weights",
the names inside TF Hub models) and Keras ("Conv1/kernel", tf.keras.applications).

`network_from_variables` turns a {name: array} dict from any container (a
checkpoint, a Keras .h5) into an ir.Network; `slim_variables` and
`keras_variables` go the other way, for writing test fixtures.

Widths come from the kernel shapes; strides are not stored anywhere, so they
come from the standard MobileNetV2 pattern (ir.MOBILENET_V2_BLOCKS), which is
why exactly 17 inverted-residual blocks are required.
"""

from __future__ import annotations

import re
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import ir

BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")
BN_EPSILON = 0.001  # slim's and Keras' MobileNetV2 both build BN with eps 1e-3
# Both expect [-1, 1] pixels; featx models take [0, 1]: internal = 2x - 1.
INPUT_SCALE, INPUT_OFFSET = 2.0, -1.0
STANDARD_WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def block_strides() -> List[Tuple[int, int, int]]:
    """(expansion, channels, stride) for every block of the standard network."""
    out = []
    for t, c, n, s in ir.MOBILENET_V2_BLOCKS:
        out += [(t, c, s if i == 0 else 1) for i in range(n)]
    return out


NUM_BLOCKS = len(block_strides())


class Scheme:
    """Where each parameter of each layer lives under one naming convention.
    A layer is "stem", "head", or (role, block index) with role in expand/depthwise/project."""
    name = ""
    kernel_suffix = {}

    def layer(self, layer) -> str:
        raise NotImplementedError

    def kernel(self, layer) -> str:
        role = layer[0] if isinstance(layer, tuple) else "full"
        return f"{self.layer(layer)}/{self.kernel_suffix.get(role, self.kernel_suffix['full'])}"

    def bias(self, layer) -> str:
        raise NotImplementedError

    def bn(self, layer, param: str) -> str:
        raise NotImplementedError

    def logits(self) -> Tuple[List[str], List[str]]:
        """Candidate (weight names, bias names) of the classifier."""
        raise NotImplementedError


class SlimScheme(Scheme):
    name = "slim"
    root = "MobilenetV2"
    kernel_suffix = {"full": "weights", "depthwise": "depthwise_weights"}

    def layer(self, layer) -> str:
        if layer == "stem":
            return f"{self.root}/Conv"
        if layer == "head":
            return f"{self.root}/Conv_1"
        role, index = layer
        return f"{self.root}/{ir.block_name(index)}/{role}"

    def bias(self, layer) -> str:
        return f"{self.layer(layer)}/biases"

    def bn(self, layer, param: str) -> str:
        return f"{self.layer(layer)}/BatchNorm/{param}"

    def logits(self):
        return [f"{self.root}/Logits/Conv2d_1c_1x1/weights"], \
            [f"{self.root}/Logits/Conv2d_1c_1x1/biases"]


class KerasScheme(Scheme):
    name = "keras"
    kernel_suffix = {"full": "kernel", "depthwise": "depthwise_kernel"}

    def layer(self, layer) -> str:
        if layer == "stem":
            return "Conv1"
        if layer == "head":
            return "Conv_1"
        role, index = layer
        return f"expanded_conv_{role}" if index == 0 else f"block_{index}_{role}"

    def bias(self, layer) -> str:
        return f"{self.layer(layer)}/bias"

    def bn(self, layer, param: str) -> str:
        if layer == "stem":
            return f"bn_Conv1/{param}"
        if layer == "head":
            return f"Conv_1_bn/{param}"
        return f"{self.layer(layer)}_BN/{param}"

    def logits(self):
        # tf.keras.applications names the Dense "predictions"; some exports say "Logits".
        return ["predictions/kernel", "Logits/kernel"], ["predictions/bias", "Logits/bias"]


SCHEMES = (SlimScheme(), KerasScheme())

_KERAS_LAYER = re.compile(r"^(Conv1|bn_Conv1|Conv_1|Conv_1_bn|predictions|Logits|"
                          r"expanded_conv_(depthwise|project)(_BN)?|"
                          r"block_\d+_(expand|depthwise|project)(_BN)?)$")


def normalize_names(variables: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """Strip ":0" and container prefixes ("module/MobilenetV2/...",
    "mobilenetv2_1.00_224/Conv1/kernel") so names match a Scheme. When two raw
    names land on one name, the shorter raw name (least prefixed) wins."""
    chosen: Dict[str, Tuple[str, np.ndarray]] = {}
    notes = []
    for raw, value in variables.items():
        name = raw[:-2] if raw.endswith(":0") else raw
        slim_at = name.rfind(SlimScheme.root + "/")
        parts = name.split("/")
        if slim_at >= 0 and (slim_at == 0 or name[slim_at - 1] == "/"):
            name = name[slim_at:]
        elif len(parts) >= 2 and _KERAS_LAYER.match(parts[-2]):
            name = "/".join(parts[-2:])
        previous = chosen.get(name)
        if previous is None or len(raw) < len(previous[0]):
            if previous is not None:
                notes.append(f"{name}: took {raw!r} over {previous[0]!r}")
            chosen[name] = (raw, value)
        else:
            notes.append(f"{name}: took {previous[0]!r} over {raw!r}")
    return {name: value for name, (_, value) in chosen.items()}, notes


def _describe(variables) -> str:
    keys = sorted(variables)
    shown = ", ".join(keys[:8])
    return f"{len(keys)} variables: {shown}{', ...' if len(keys) > 8 else ''}"


def _pick_scheme(variables) -> Scheme:
    for scheme in SCHEMES:
        if scheme.kernel("stem") in variables:
            return scheme
    raise ValueError("not a MobileNetV2 checkpoint in slim (MobilenetV2/Conv/weights) or Keras "
                     f"(Conv1/kernel) naming; found {_describe(variables)}")


def _conv(variables, scheme: Scheme, layer, name: str, kind: str, stride: int,
          activation: str) -> ir.Conv:
    key = scheme.kernel(layer)
    kernel = np.asarray(variables[key], dtype=np.float32)
    if kind == "depthwise":
        if kernel.ndim == 4 and kernel.shape[3] == 1:
            kernel = kernel[:, :, :, 0]  # TF stores [kh, kw, C, multiplier=1]
        if kernel.ndim != 3:
            raise ValueError(f"{key}: expected a depthwise kernel [kh, kw, C, 1], found shape "
                             f"{variables[key].shape}")
    elif kernel.ndim != 4:
        raise ValueError(f"{key}: expected a conv kernel [kh, kw, in, out], found shape "
                         f"{kernel.shape}")
    out_channels = kernel.shape[-1] if kind == "full" else kernel.shape[2]
    bn = None
    present = [p for p in BN_PARAMS if scheme.bn(layer, p) in variables]
    if present:
        params = {}
        for p in BN_PARAMS:
            bn_key = scheme.bn(layer, p)
            if bn_key in variables:
                value = np.asarray(variables[bn_key], dtype=np.float32).reshape(-1)
            elif p in ("gamma", "beta"):  # BN built with scale=False / center=False
                value = np.ones(out_channels, np.float32) if p == "gamma" \
                    else np.zeros(out_channels, np.float32)
            else:
                raise ValueError(f"{key}: batch norm has {', '.join(present)} but no {bn_key}")
            if value.shape != (out_channels,):
                raise ValueError(f"{bn_key}: shape {value.shape} does not match the "
                                 f"{out_channels} channels of {key}")
            params[p] = value
        bn = ir.BatchNorm(epsilon=BN_EPSILON, **params)
    bias = variables.get(scheme.bias(layer))
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float32).reshape(-1)
        if bias.shape != (out_channels,):
            raise ValueError(f"{scheme.bias(layer)}: shape {bias.shape} does not match "
                             f"{out_channels} channels")
    if bn is None and bias is None:
        raise ValueError(f"{key}: found neither batch norm ({scheme.bn(layer, 'moving_mean')}) "
                         f"nor bias ({scheme.bias(layer)})")
    return ir.Conv(name=name, kind=kind, kernel=kernel, stride=stride, bias=bias,
                   batch_norm=bn, activation=activation)


def _count_blocks(variables, scheme: Scheme) -> int:
    count = 0
    while scheme.kernel(("project", count)) in variables:
        count += 1
    return count


def infer_width(net: ir.Network) -> Optional[float]:
    """The standard width multiplier whose make_divisible rounding gives these channels."""
    outs = [b.out_channels for b in net.blocks]
    for alpha in STANDARD_WIDTHS:
        head = 1280 if alpha <= 1.0 else ir.make_divisible(1280 * alpha)
        if (ir.make_divisible(32 * alpha) == net.stem.out_channels
                and all(ir.make_divisible(c * alpha) == o
                        for (_, c, _), o in zip(block_strides(), outs))
                and head == net.head.out_channels):
            return alpha
    return None


def _classifier(variables, scheme: Scheme, features: int) -> Optional[ir.Classifier]:
    weight_names, bias_names = scheme.logits()
    key = next((k for k in weight_names if k in variables), None)
    if key is None:
        return None
    w = np.asarray(variables[key], dtype=np.float32)
    if w.ndim == 4 and w.shape[:2] == (1, 1):
        w = w[0, 0]  # slim's 1x1 conv logits
    if w.ndim != 2 or w.shape[0] != features:
        raise ValueError(f"{key}: expected [{features}, classes], found {variables[key].shape}")
    bias_key = next((k for k in bias_names if k in variables), None)
    bias = None if bias_key is None else np.asarray(variables[bias_key], np.float32).reshape(-1)
    classes = w.shape[1]
    if bias is not None and bias.shape != (classes,):
        raise ValueError(f"{bias_key}: shape {bias.shape} does not match {classes} classes")
    # 1001 classes include "background" at 0 like imagenet_labels.txt; 1000 start one later.
    return ir.Classifier(weights=np.ascontiguousarray(w.T), bias=bias,
                         label_offset=1 if classes == 1000 else 0)


def network_from_variables(variables: Dict[str, np.ndarray], *, resolution: Optional[int] = None,
                           width_multiplier: Optional[float] = None, source: str = "",
                           source_format: str = "") -> ir.Network:
    """An ir.Network from slim- or Keras-named MobileNetV2 variables.
    Raises ValueError naming what was found when the layout is not recognised."""
    variables, notes = normalize_names(variables)
    scheme = _pick_scheme(variables)
    count = _count_blocks(variables, scheme)
    if count != NUM_BLOCKS:
        raise ValueError(f"{scheme.name} MobileNetV2 has {NUM_BLOCKS} blocks; found {count} "
                         f"(no {scheme.kernel(('project', count))}) among {_describe(variables)}")
    for key in [scheme.kernel("stem"), scheme.kernel("head")] + [
            scheme.kernel((role, i)) for i in range(count) for role in ("depthwise", "project")]:
        if key not in variables:
            raise ValueError(f"missing {key} among {_describe(variables)}")
    try:
        stem = _conv(variables, scheme, "stem", "Conv", "full", 2, "relu6")
        blocks = []
        channels = stem.out_channels
        for i, (t, _c, stride) in enumerate(block_strides()):
            name = ir.block_name(i)
            expand = None
            if scheme.kernel(("expand", i)) in variables:
                expand = _conv(variables, scheme, ("expand", i), f"{name}/expand", "full", 1,
                               "relu6")
            depthwise = _conv(variables, scheme, ("depthwise", i), f"{name}/depthwise",
                              "depthwise", stride, "relu6")
            project = _conv(variables, scheme, ("project", i), f"{name}/project", "full", 1,
                            "none")
            inner = depthwise.out_channels
            expansion = inner // channels if expand is not None and inner % channels == 0 else (
                t if expand is not None else 1)
            blocks.append(ir.Block(name=name, expansion=expansion, stride=stride,
                                   in_channels=channels, out_channels=project.out_channels,
                                   expand=expand, depthwise=depthwise, project=project))
            channels = project.out_channels
        head = _conv(variables, scheme, "head", "Conv_1", "full", 1, "relu6")
    except KeyError as exc:
        raise ValueError(f"missing {exc.args[0]} among {_describe(variables)}") from None
    net = ir.Network(width_multiplier=width_multiplier or 0.0, resolution=resolution or 224,
                     input_scale=INPUT_SCALE, input_offset=INPUT_OFFSET, stem=stem,
                     blocks=blocks, head=head, source=source, source_format=source_format)
    net.classifier = _classifier(variables, scheme, net.feature_dim)
    if width_multiplier is None:
        alpha = infer_width(net)
        if alpha is None:
            alpha = round(blocks[-1].out_channels / 320.0, 3)
            notes.append(f"channels match no standard width; estimated {alpha} from the last "
                         "block")
        net.width_multiplier = alpha
    if resolution is None:
        notes.append("input resolution is not stored with the weights; assumed 224")
    notes.insert(0, f"{scheme.name} variable names")
    net.notes = "; ".join(notes)
    net.validate()
    return net


def _bn_arrays(bn: ir.BatchNorm) -> Dict[str, np.ndarray]:
    return {p: getattr(bn, p) for p in BN_PARAMS}


def named_convs(net: ir.Network) -> Iterator[Tuple[object, ir.Conv]]:
    """(Scheme layer key: "stem", ("expand", i), ..., "head"; conv) of every conv, in order."""
    yield "stem", net.stem
    for i, block in enumerate(net.blocks):
        if block.expand is not None:
            yield ("expand", i), block.expand
        yield ("depthwise", i), block.depthwise
        yield ("project", i), block.project
    yield "head", net.head


def network_variables(net: ir.Network, scheme: Scheme) -> Dict[str, np.ndarray]:
    """The variables a TF model of `net` would hold under `scheme`'s names."""
    out: Dict[str, np.ndarray] = {}
    for layer, conv in named_convs(net):
        kernel = conv.kernel
        if conv.kind == "depthwise":
            kernel = kernel[:, :, :, None]
        out[scheme.kernel(layer)] = kernel
        if conv.bias is not None:
            out[scheme.bias(layer)] = conv.bias
        if conv.batch_norm is not None:
            for p, value in _bn_arrays(conv.batch_norm).items():
                out[scheme.bn(layer, p)] = value
    if net.classifier is not None:
        weights, biases = scheme.logits()
        w = net.classifier.weights.T
        out[weights[0]] = w[None, None] if scheme.name == "slim" else w
        if net.classifier.bias is not None:
            out[biases[0]] = net.classifier.bias
    return out


def slim_variables(net: ir.Network) -> Dict[str, np.ndarray]:
    return network_variables(net, SlimScheme())


def keras_variables(net: ir.Network) -> Dict[str, np.ndarray]:
    return network_variables(net, KerasScheme())


def parse_model_name(path: str) -> Tuple[Optional[float], Optional[int]]:
    """(width, resolution) from names like mobilenet_v2_100_224 (Hub) or
    mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 (Keras)."""
    m = re.search(r"mobilenet_v2_(\d{3})_(\d{2,3})(?!\d)", path)
    if m:
        return int(m.group(1)) / 100.0, int(m.group(2))
    m = re.search(r"_(\d\.\d+)_(\d{2,3})(?:_no_top)?\.h5$", path)
    if m:
        return float(m.group(1)), int(m.group(2))
    return None, None
